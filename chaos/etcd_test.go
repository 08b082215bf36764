package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// etcdMember is one member of a cluster's separate etcd.
type etcdMember struct {
	name, url string
}

// etcdMembers lists the cluster's etcd members (e1, e2... in the order of
// their client URLs); none when its etcd is embedded in a fleetd.
func (c *cluster) etcdMembers(t *testing.T) []etcdMember {
	t.Helper()
	s, err := clusterstate.Load(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(s.Machines, func(m machine) bool { return m.EtcdHost }) {
		return nil
	}
	var out []etcdMember
	for i, u := range s.EtcdURLs {
		out = append(out, etcdMember{fmt.Sprintf("e%d", i+1), u})
	}
	return out
}

// reviveEtcd restarts every member of the cluster's etcd that is dead (an
// earlier test may have left one so).
func (c *cluster) reviveEtcd(t *testing.T) {
	t.Helper()
	for _, e := range c.etcdMembers(t) {
		if _, ok := c.live("etcd", e.name); !ok {
			c.restartEtcd(t, e.name)
		}
	}
}

// restartEtcd starts dead member name again with fleet-cluster restart
// -etcd (same data, URLs and namespace), which returns once it is healthy.
func (c *cluster) restartEtcd(t *testing.T, name string) {
	t.Helper()
	out, err := exec.Command(c.tool, "restart", "-dir", c.dir, "-etcd", name, "-wait", "45s").CombinedOutput()
	if err != nil {
		t.Fatalf("fleet-cluster restart -etcd %s: %v\n%s", name, err, out)
	}
}

// stopEtcd sends sig to member name and waits until it is gone.
func (c *cluster) stopEtcd(t *testing.T, name string, sig syscall.Signal) {
	t.Helper()
	p, ok := c.live("etcd", name)
	if !ok {
		t.Fatalf("etcd member %s does not run", name)
	}
	if err := syscall.Kill(p.PID, sig); err != nil {
		t.Fatalf("%v to etcd member %s (pid %d): %v", sig, name, p.PID, err)
	}
	eventually(t, waitLimit, "etcd member "+name+" gone", func() error {
		if p.Alive() {
			return errNotYet
		}
		return nil
	})
}

// etcdLeader returns the member reporting etcd_server_is_leader 1 on its
// /metrics, asking every live member.
func (c *cluster) etcdLeader(t *testing.T) etcdMember {
	t.Helper()
	var lead etcdMember
	eventually(t, waitLimit, "one etcd leader", func() error {
		var found []etcdMember
		for _, e := range c.etcdMembers(t) {
			if _, ok := c.live("etcd", e.name); !ok {
				continue
			}
			v, err := etcdMetric(e.url, "etcd_server_is_leader")
			if err != nil {
				return err
			}
			if v == "1" {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%d etcd members lead: %w", len(found), errNotYet)
		}
		lead = found[0]
		return nil
	})
	return lead
}

// etcdMetric reads the value of the sample name on an etcd member's /metrics.
func etcdMetric(url, name string) (string, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s/metrics: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s/metrics: %w", url, err)
	}
	return "", fmt.Errorf("%s/metrics: no sample %s", url, name)
}

// fleetdHealth asks machine m's fleetd for /health: nil while it serves 200,
// else the status and what it says.
func fleetdHealth(m machine) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", m.Socket)
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://fleetd/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			body.WriteString(sc.Text())
		}
		return fmt.Errorf("%s: %s", resp.Status, body.String())
	}
	return nil
}

// presenceLapsed waits until every machine's fleetd says on /health that it
// could not renew its presence for agent_ttl: the outage has outlasted
// agent_ttl as each fleetd sees it. It returns what the last one said.
func (c *cluster) presenceLapsed(t *testing.T) string {
	t.Helper()
	var said string
	eventually(t, 2*waitLimit, "every fleetd unhealthy (presence not renewed for agent_ttl)", func() error {
		for _, m := range c.machines {
			err := fleetdHealth(m)
			if err == nil {
				return fmt.Errorf("%s's fleetd still healthy: %w", m.Name, errNotYet)
			}
			said = m.Name + ": " + err.Error()
		}
		return nil
	})
	return said
}

// listsAll waits until fleetctl list-machines, asked of every machine, lists
// every machine: fleet serves again.
func (c *cluster) listsAll(t *testing.T) {
	t.Helper()
	eventually(t, 2*waitLimit, "fleetctl list-machines listing every machine", func() error {
		for _, ask := range c.machines {
			out, err := c.fleetctlOn(ask, "", "list-machines", "--no-legend", "-l", "--fields=machine")
			if err != nil {
				return err
			}
			for _, m := range c.machines {
				if !strings.Contains(out, m.ID) {
					return fmt.Errorf("%s's list-machines lacks %s: %w", ask.Name, m.Name, errNotYet)
				}
			}
		}
		return nil
	})
}

// etcdRun is the start of one etcd fault test: units started and settled,
// what they looked like, the beacon's starts and a watcher of double runs.
type etcdRun struct {
	c       *cluster
	dir     string
	log     string
	units   []string
	globals []string
	before  layout
	beacons map[string]int
	w       *watcher
	barrier int
}

// startEtcdRun starts six logged units (instances of prefix@.service) and
// waits until they and the beacon run once.
func (c *cluster) startEtcdRun(t *testing.T, prefix string) *etcdRun {
	t.Helper()
	c.reviveEtcd(t)
	if err := c.reviveAll(); err != nil {
		t.Fatal(err)
	}
	r := &etcdRun{c: c, log: filepath.Join(t.TempDir(), "starts"), units: instances(prefix, 6), globals: []string{beaconUnit}}
	r.dir = c.unitDir(t, map[string]string{prefix + "@.service": loggedService(r.log)})
	c.ctl(t, c.machines[0], r.dir, append([]string{"start"}, r.units...)...)
	r.before = c.settled(t, "", r.units, r.globals, c.machines)
	r.beacons = c.beaconStarts(t)
	r.w = c.watch(r.units)
	return r
}

// untouched checks that every unit and the beacon run with the processes
// they had at the start, on the same machines.
func (r *etcdRun) untouched(t *testing.T, when string) {
	t.Helper()
	now, err := r.c.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range append(slices.Clone(r.units), r.globals...) {
		if !maps.EqualFunc(now[u], r.before[u], slices.Equal) {
			t.Errorf("%s %s: processes %v, were %v (restarted or moved)", u, when, now[u], r.before[u])
		}
	}
}

// recovered checks, once etcd is back, that new work is scheduled and
// started on every machine (a barrier unit pinned to each: every fleetd has
// caught up, so what follows is final), that every unit still runs once
// with its processes, was started once, and the beacon never again.
func (r *etcdRun) recovered(t *testing.T, prefix string) {
	t.Helper()
	c := r.c
	for _, m := range c.machines {
		r.newWork(t, m, prefix)
	}
	after := c.settled(t, "", r.units, r.globals, c.machines)
	c.checkUntouched(t, r.before, after, r.units, "")
	r.untouched(t, "after etcd came back")
	checkStarts(t, r.log, r.units, func(string) int { return 1 })
	if now := c.beaconStarts(t); !maps.Equal(now, r.beacons) {
		t.Errorf("%s started again: starts by machine %v, were %v", beaconUnit, now, r.beacons)
	}
}

// newWork starts a new unit pinned to machine m and waits until it runs
// there (a barrier: m's fleetd has caught up). Right after etcd comes back
// fleetd may still answer 503 for a moment: the start is repeated (it is
// idempotent) until fleetctl takes it, and the refusals are logged.
func (r *etcdRun) newWork(t *testing.T, m machine, prefix string) {
	t.Helper()
	c := r.c
	r.barrier++
	unit := fmt.Sprintf("%s-barrier%d.service", prefix, r.barrier)
	if err := os.WriteFile(filepath.Join(r.dir, unit), []byte(service("/bin/sleep infinity", "MachineMetadata=name="+m.Name)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var refused []string
	eventually(t, waitLimit, "fleetctl start "+unit+" taken", func() error {
		_, err := c.fleetctlOn(c.machines[0], r.dir, "start", "--no-block", unit)
		if err != nil {
			refused = append(refused, lastLine(err.Error()))
		}
		return err
	})
	eventually(t, waitLimit, unit+" running on "+m.Name, func() error {
		on, err := c.runsOn(unit)
		if err != nil {
			return err
		}
		if len(on) != 1 || on[m.Name] == nil {
			return fmt.Errorf("%s runs on %v: %w", unit, on, errNotYet)
		}
		return nil
	})
	t.Logf("new unit %s running on %s %v after it was submitted", unit, m.Name, time.Since(start).Round(time.Millisecond))
	if len(refused) > 0 {
		t.Logf("fleetctl start %s refused %d time(s) first, the last: %s", unit, len(refused), refused[len(refused)-1])
	}
}

// end stops the watcher: no unit may have run on two machines.
func (r *etcdRun) end(t *testing.T) {
	t.Helper()
	logOverlaps(t, r.w.end(t), nil)
}

// TestEtcdRestart stops the shared cluster's etcd (a separate one-member
// process) for longer than agent_ttl, with SIGKILL and with SIGTERM, and
// starts it again with fleet-cluster restart -etcd: every unit keeps its
// processes throughout, nothing is lost, every machine is listed again, an
// engine leads again, new work is scheduled and started, and no unit ever
// runs on two machines.
//
// The quick set stops it with SIGTERM only: etcd's graceful stop takes
// seconds during which it still runs and expires every presence, the case
// that moved units before the engine waited for the machines after an
// outage. The whole set adds SIGKILL first.
func TestEtcdRestart(t *testing.T) {
	c := needCluster(t)
	r := c.startEtcdRun(t, "er")
	defer r.end(t)
	sigs := []syscall.Signal{syscall.SIGTERM}
	if os.Getenv(fullSetEnv) == "1" {
		sigs = []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM}
	}
	for _, sig := range sigs {
		c.etcdOutage(t, r, sig)
	}
}

// etcdOutage stops the one etcd member with sig until every fleetd's
// presence lapsed, restarts it and checks that fleet carries on.
func (c *cluster) etcdOutage(t *testing.T, r *etcdRun, sig syscall.Signal) {
	t.Helper()
	e := c.etcdMembers(t)[0]
	c.stopEtcd(t, e.name, sig)
	stopped := time.Now()
	said := c.presenceLapsed(t)
	t.Logf("%v to etcd: every fleetd unhealthy %v later (%s)", sig, time.Since(stopped).Round(time.Millisecond), said)
	r.untouched(t, "with etcd down")
	c.restartEtcd(t, e.name)
	back := time.Now()
	t.Logf("etcd down for %v (%v), healthy again", back.Sub(stopped).Round(time.Millisecond), sig)
	c.listsAll(t)
	serving := time.Since(back)
	eventually(t, 2*waitLimit, "an engine leading", func() error { _, err := c.leader(c.machines); return err })
	t.Logf("fleet serves again (list-machines lists every machine on every machine) %v after etcd came back; an engine leads %v after", serving.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	r.recovered(t, fmt.Sprintf("er%d", sig))
}

// The cluster on a separate three-member etcd that TestEtcdMember and
// TestEtcdQuorum share, brought up by the first of them to run and stopped
// by TestMain.
var three struct {
	once sync.Once
	c    *cluster
	err  error
}

// threeMembers returns the cluster on a three-member etcd, bringing it up
// the first time.
func threeMembers(t *testing.T) *cluster {
	t.Helper()
	needCluster(t)
	three.once.Do(func() {
		dir, err := os.MkdirTemp("", "fleet-chaos-etcd3-")
		if err != nil {
			three.err = err
			return
		}
		three.c, three.err = startCluster(filepath.Dir(cl.fleetd), filepath.Join(dir, "c"), "-etcd", "3")
	})
	if three.err != nil {
		t.Fatal(three.err)
	}
	if n := len(three.c.etcdMembers(t)); n != 3 {
		t.Fatalf("the second cluster has %d etcd members, want 3", n)
	}
	return three.c
}

// downThree stops the three-member cluster if a test brought it up.
func downThree() error {
	if three.c == nil {
		return nil
	}
	defer os.RemoveAll(filepath.Dir(three.c.dir))
	return three.c.down()
}

// TestEtcdMember kills the etcd leader member of a three-member etcd: fleet
// keeps working (a new unit is scheduled and started while it is down) and
// nothing restarts or moves; restarted, the member rejoins healthy.
func TestEtcdMember(t *testing.T) {
	onlyInFullSet(t, "brings up a second cluster, on a three-member etcd")
	c := threeMembers(t)
	r := c.startEtcdRun(t, "em")
	defer r.end(t)
	lead := c.etcdLeader(t)
	c.stopEtcd(t, lead.name, syscall.SIGKILL)
	killed := time.Now()
	t.Logf("killed the etcd leader %s", lead.name)
	r.newWork(t, c.machines[1], "em")
	t.Logf("a new unit scheduled and running %v after the kill", time.Since(killed).Round(time.Millisecond))
	newLead := c.etcdLeader(t)
	t.Logf("%s leads etcd now", newLead.name)
	r.untouched(t, "with the etcd leader dead")
	c.restartEtcd(t, lead.name)
	t.Logf("%s healthy again %v after the kill", lead.name, time.Since(killed).Round(time.Millisecond))
	for _, e := range c.etcdMembers(t) {
		if v, err := etcdMetric(e.url, "etcd_server_has_leader"); err != nil || v != "1" {
			t.Errorf("etcd member %s after the restart: etcd_server_has_leader %q (%v), want 1", e.name, v, err)
		}
	}
	c.etcdLeader(t)
	r.recovered(t, "em")
}

// TestEtcdQuorum kills two of three etcd members for longer than agent_ttl:
// the units keep running (as the cgroups show) and fleetctl fails with an
// error instead of hanging; with both members back nothing is lost, nothing
// restarted or moved, and new work proceeds.
func TestEtcdQuorum(t *testing.T) {
	onlyInFullSet(t, "brings up a second cluster, on a three-member etcd")
	c := threeMembers(t)
	r := c.startEtcdRun(t, "eq")
	defer r.end(t)
	lead := c.etcdLeader(t)
	gone := []string{lead.name}
	for _, e := range c.etcdMembers(t) {
		if e.name != lead.name && len(gone) < 2 {
			gone = append(gone, e.name)
		}
	}
	for _, name := range gone {
		c.stopEtcd(t, name, syscall.SIGKILL)
	}
	killed := time.Now()
	said := c.presenceLapsed(t)
	t.Logf("killed etcd members %v (the leader was %s): every fleetd unhealthy %v later (%s)", gone, lead.name, time.Since(killed).Round(time.Millisecond), said)
	r.untouched(t, "without etcd quorum")
	for _, args := range [][]string{{"list-units"}, {"start", "--no-block", r.units[0]}} {
		start := time.Now()
		_, err := c.fleetctlOn(c.machines[1], r.dir, args...)
		took := time.Since(start)
		if err == nil {
			t.Errorf("fleetctl %s without etcd quorum succeeded", strings.Join(args, " "))
			continue
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
			t.Errorf("fleetctl %s without etcd quorum did not fail by itself within a minute: %v", strings.Join(args, " "), err)
		}
		t.Logf("fleetctl %s without etcd quorum: failed after %v: %s", strings.Join(args, " "), took.Round(time.Millisecond), lastLine(err.Error()))
	}
	r.untouched(t, "without etcd quorum")
	for _, name := range gone {
		c.restartEtcd(t, name)
	}
	back := time.Now()
	t.Logf("quorum lost for %v", back.Sub(killed).Round(time.Millisecond))
	c.listsAll(t)
	t.Logf("fleet serves again %v after quorum returned", time.Since(back).Round(time.Millisecond))
	eventually(t, 2*waitLimit, "an engine leading", func() error { _, err := c.leader(c.machines); return err })
	r.recovered(t, "eq")
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// The cluster on the default etcd, embedded in m1's fleetd, that
// TestEmbeddedEtcdRestart brings up once and TestMain stops.
var embedded struct {
	once sync.Once
	c    *cluster
	err  error
}

// embeddedEtcd returns the cluster whose etcd is embedded in m1's fleetd,
// bringing it up the first time, with every machine running. Its fleetds
// detach on SIGTERM (shutdown_mode=detach): their units keep running, as
// after a crash; the default, drain, would stop them and move them on
// purpose.
func embeddedEtcd(t *testing.T) *cluster {
	t.Helper()
	needCluster(t)
	embedded.once.Do(func() {
		dir, err := os.MkdirTemp("", "fleet-chaos-embedded-")
		if err != nil {
			embedded.err = err
			return
		}
		embedded.c, embedded.err = startCluster(filepath.Dir(cl.fleetd), filepath.Join(dir, "c"), "-etcd", "0", "-fleetd-option", "shutdown_mode=detach")
	})
	if embedded.err != nil {
		t.Fatal(embedded.err)
	}
	c := embedded.c
	if !c.machines[0].EtcdHost {
		t.Fatalf("%s of the embedded-etcd cluster does not host its etcd", c.machines[0].Name)
	}
	if err := c.reviveAll(); err != nil {
		t.Fatal(err)
	}
	return c
}

// downEmbedded stops the embedded-etcd cluster if a test brought it up.
func downEmbedded() error {
	if embedded.c == nil {
		return nil
	}
	defer os.RemoveAll(filepath.Dir(embedded.c.dir))
	return embedded.c.down()
}

// TestEmbeddedEtcdRestart stops m1's fleetd, which hosts the cluster's
// etcd, so that fleetd and etcd go down together while m1's units run on
// under its systemd manager, first with SIGKILL, then with SIGTERM (a
// graceful stop, which stops the embedded etcd gracefully: etcd then expires
// every presence). The outage lasts until every fleetd's presence lapsed;
// fleet-cluster restart brings m1's fleetd back with the same etcd data and
// URLs. Every unit keeps its processes throughout, m1's included (its
// restarted fleetd adopts them), nothing is lost, every machine is listed
// again, an engine leads, new work runs on every machine, and no unit ever
// runs on two machines.
func TestEmbeddedEtcdRestart(t *testing.T) {
	onlyInFullSet(t, "brings up a second cluster, on the etcd embedded in m1's fleetd")
	c := embeddedEtcd(t)
	r := c.startEtcdRun(t, "ee")
	defer r.end(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		c.etcdHostOutage(t, r, sig)
	}
}

// etcdHostOutage stops the fleetd hosting the embedded etcd with sig until
// every fleetd's presence lapsed, restarts it and checks that fleet carries
// on.
func (c *cluster) etcdHostOutage(t *testing.T, r *etcdRun, sig syscall.Signal) {
	t.Helper()
	host := c.machines[0]
	p := c.signal(t, host, sig)
	stopped := time.Now()
	eventually(t, waitLimit, host.Name+"'s fleetd gone", func() error {
		if p.Alive() {
			return errNotYet
		}
		return nil
	})
	t.Logf("%v to %s's fleetd (and its etcd): gone %v later", sig, host.Name, time.Since(stopped).Round(time.Millisecond))
	said := c.presenceLapsed(t)
	t.Logf("every other fleetd unhealthy %v after the signal (%s)", time.Since(stopped).Round(time.Millisecond), said)
	r.untouched(t, "with "+host.Name+"'s fleetd and etcd down")
	if err := c.restart(host.Name); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("%s's fleetd and etcd down for %v (%v), healthy again", host.Name, back.Sub(stopped).Round(time.Millisecond), sig)
	c.listsAll(t)
	serving := time.Since(back)
	eventually(t, 2*waitLimit, "an engine leading", func() error { _, err := c.leader(c.machines); return err })
	t.Logf("fleet serves again (list-machines lists every machine on every machine) %v after %s came back; an engine leads %v after", serving.Round(time.Millisecond), host.Name, time.Since(back).Round(time.Millisecond))
	r.recovered(t, fmt.Sprintf("ee%d", sig))
}
