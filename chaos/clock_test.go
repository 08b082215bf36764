package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// clockRenewals is how many presence renewals every machine must make after
// a clock jump before it is judged: at agent_ttl/3 apart, longer than
// agent_ttl and than the engine lease (5 × engine_reconcile_interval, 10 s).
const clockRenewals = 7

// TestClock jumps the real-time clock (CLOCK_REALTIME) 10 minutes forward,
// then to 10 minutes behind the true time, and sets it back. The machines of
// the local cluster share one kernel, so a jump hits every machine at once
// (a jump on one machine only, against the others, is not tested). After
// each jump, once every machine renewed its presence clockRenewals times:
// every /health answered 200 all along, the same engine leads, every machine
// is present, a new unit is scheduled and runs; at the end nothing moved,
// restarted or ran twice.
func TestClock(t *testing.T) {
	onlyInFullSet(t, "sets the host's real-time clock, which every process on the host sees, and sets it back at the end")
	c := needCluster(t)
	clock := holdClock(t)
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{"ck@.service": loggedService(log)})
	units := instances("ck", 6)
	c.ctl(t, c.machines[0], dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	st := c.steadyState(t, units, globals)
	lead := st.lead

	w := c.watch(units)
	for _, jump := range []struct {
		name   string
		offset time.Duration
	}{{"forward", 10 * time.Minute}, {"backward", -10 * time.Minute}} {
		if err := clock.set(jump.offset); err != nil {
			t.Fatal(err)
		}
		jumped := time.Now()
		t.Logf("real-time clock set %v from the true time (%s)", jump.offset, time.Now().Round(0).Format(time.RFC3339))
		c.afterJump(t, lead)
		c.barrier(t, dir, c.except(lead.Name)[0], "ck-after-"+jump.name+".service")
		t.Logf("after the %s jump: checks done and a new unit running %v later", jump.name, time.Since(jumped).Round(time.Millisecond))
	}
	clock.restore(t)

	c.checkNothingMoved(t, st, units, globals, log, "the clock jumps")
	logOverlaps(t, w.end(t), nil)
}

// TestClockAhead restarts m2's fleetd in a time namespace whose monotonic
// and boot-time clocks are 3 days ahead of the other machines' (the
// real-time clock cannot differ: one kernel). It adopts its units (pinned to
// m2, so that they have nowhere else to go) and restarts none; once it
// renewed its presence clockRenewals times, its /health having answered 200
// all along, a new unit pinned to it runs and nothing else moved. At the end
// its fleetd is restarted outside the namespace.
func TestClockAhead(t *testing.T) {
	onlyInFullSet(t, "needs time namespaces (Linux 5.6); TestKillFleetd covers the restart in the quick set")
	c := needCluster(t)
	victim := c.machine(t, "m2")
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{"ca@.service": loggedService(log, "MachineMetadata=name="+victim.Name)})
	units := instances("ca", 3)
	c.ctl(t, victim, dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	before := c.settled(t, "", units, globals, c.machines)
	beacons := c.beaconStarts(t)

	c.killFleetd(t, victim)
	t.Cleanup(func() {
		c.killFleetd(t, victim)
		if err := c.restart(victim.Name); err != nil {
			t.Error(err)
		}
	})
	out, err := exec.Command(c.tool, "restart", "-dir", c.dir, "-machine", victim.Name, "-fleetd", c.fleetd,
		"-systemd", systemdBin, "-agent-ttl", agentTTL.String(), "-wait", "45s", "-clock-ahead", "72h").CombinedOutput()
	if err != nil {
		t.Fatalf("fleet-cluster restart -clock-ahead: %v\n%s", err, out)
	}
	p, ok := c.live("fleetd", victim.Name)
	if !ok {
		t.Fatalf("%s's fleetd does not run after the restart", victim.Name)
	}
	own, err1 := os.Readlink("/proc/self/ns/time")
	its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", p.PID))
	if err1 != nil || err2 != nil || own == its {
		t.Fatalf("%s's fleetd in time namespace %s (%v), this test in %s (%v): want another", victim.Name, its, err2, own, err1)
	}
	uptime, err := exec.Command("nsenter", "--time", "--target", fmt.Sprint(p.PID), "cat", "/proc/uptime").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's fleetd runs in %s, where /proc/uptime reads %s", victim.Name, its, strings.TrimSpace(string(uptime)))

	c.waitRenewals(t)
	if _, err := c.leader(c.machines); err != nil {
		t.Error(err)
	}
	c.barrier(t, dir, victim, "ca-barrier.service")
	after := c.settled(t, "", units, globals, c.machines)
	c.checkUntouched(t, before, after, units, "")
	checkStarts(t, log, units, func(string) int { return 1 })
	if now := c.beaconStarts(t); !maps.Equal(now, beacons) {
		t.Errorf("%s started again: starts by machine %v, were %v", beaconUnit, now, beacons)
	}
}

// killFleetd kills machine m's fleetd, if it runs, and waits until it is
// gone.
func (c *cluster) killFleetd(t *testing.T, m machine) {
	t.Helper()
	p, ok := c.live("fleetd", m.Name)
	if !ok {
		return
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill %s's fleetd (pid %d): %v", m.Name, p.PID, err)
	}
	eventually(t, waitLimit, m.Name+"'s fleetd gone", func() error {
		if p.Alive() {
			return errNotYet
		}
		return nil
	})
}

// afterJump waits until every machine renewed its presence clockRenewals
// times (see waitRenewals), then checks that lead still leads and that fleet
// lists every machine.
func (c *cluster) afterJump(t *testing.T, lead machine) {
	t.Helper()
	c.waitRenewals(t)
	if got, err := c.leader(c.machines); err != nil || got.Name != lead.Name {
		t.Errorf("engine leader %s (%v), want %s still", got.Name, err, lead.Name)
	}
	out := c.ctl(t, c.machines[0], "", "list-machines", "--no-legend", "--fields=machine")
	if n := len(strings.Fields(out)); n != len(c.machines) {
		t.Errorf("fleet lists %d machines, want %d:\n%s", n, len(c.machines), out)
	}
}

// waitRenewals waits until every machine renewed its presence clockRenewals
// times, asking each machine's /health at every poll and failing the test
// for any answer but 200; failed renewals are logged.
func (c *cluster) waitRenewals(t *testing.T) {
	t.Helper()
	base := map[string]float64{}
	failedBase := map[string]float64{}
	for _, m := range c.machines {
		base[m.Name], failedBase[m.Name] = renewals(t, m)
	}
	unhealthy := map[string]bool{}
	eventually(t, 2*waitLimit, fmt.Sprintf("%d presence renewals of every machine", clockRenewals), func() error {
		for _, m := range c.machines {
			code, body, err := health(m)
			if err != nil {
				return err
			}
			if code != http.StatusOK && !unhealthy[m.Name] {
				unhealthy[m.Name] = true
				t.Errorf("%s's /health: %d %s", m.Name, code, strings.TrimSpace(body))
			}
		}
		for _, m := range c.machines {
			if ok, _ := renewals(t, m); ok < base[m.Name]+clockRenewals {
				return fmt.Errorf("%s renewed %v times: %w", m.Name, ok-base[m.Name], errNotYet)
			}
		}
		return nil
	})
	for _, m := range c.machines {
		if _, failed := renewals(t, m); failed > failedBase[m.Name] {
			t.Logf("%s: %v presence renewals failed meanwhile", m.Name, failed-failedBase[m.Name])
		}
	}
}

// health asks machine m's fleetd for /health over its API socket.
func health(m machine) (int, string, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", m.Socket)
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://fleetd/health")
	if err != nil {
		return 0, "", fmt.Errorf("/health of %s: %w", m.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(body), err
}

// trueClock knows the true real time while the test moves the real-time
// clock: the boot-time clock, which setting the real-time clock leaves
// alone, measures what passed since a reading of both.
type trueClock struct {
	real0, boot0 int64 // nanoseconds
}

// holdClock reads the true time and sets the real-time clock back to it at
// the end of the test, whatever happens.
func holdClock(t *testing.T) *trueClock {
	t.Helper()
	b1, err := clockNanos(unix.CLOCK_BOOTTIME)
	if err != nil {
		t.Fatal(err)
	}
	r, err := clockNanos(unix.CLOCK_REALTIME)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := clockNanos(unix.CLOCK_BOOTTIME)
	if err != nil {
		t.Fatal(err)
	}
	c := &trueClock{real0: r, boot0: b1 + (b2-b1)/2}
	t.Cleanup(func() { c.restore(t) })
	return c
}

// set sets the real-time clock to the true time plus offset.
func (c *trueClock) set(offset time.Duration) error {
	b, err := clockNanos(unix.CLOCK_BOOTTIME)
	if err != nil {
		return err
	}
	ts := unix.NsecToTimespec(c.real0 + b - c.boot0 + int64(offset))
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("set CLOCK_REALTIME: %w", err)
	}
	return nil
}

// restore sets the real-time clock back to the true time and checks it.
func (c *trueClock) restore(t *testing.T) {
	t.Helper()
	if err := c.set(0); err != nil {
		t.Errorf("setting the real-time clock back: %v", err)
		return
	}
	b, berr := clockNanos(unix.CLOCK_BOOTTIME)
	r, rerr := clockNanos(unix.CLOCK_REALTIME)
	if berr != nil || rerr != nil {
		t.Errorf("reading the clocks: %v %v", berr, rerr)
		return
	}
	if off := time.Duration(r - (c.real0 + b - c.boot0)); off.Abs() > 100*time.Millisecond {
		t.Errorf("real-time clock %v off the true time after setting it back", off)
	}
}

// clockNanos reads clock id in nanoseconds.
func clockNanos(id int32) (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, fmt.Errorf("clock %d: %w", id, err)
	}
	return ts.Nano(), nil
}
