package chaos

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterprobe"
	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// lossyRenewals is how many presence renewals the victim of a lossy link
// must make through it before the loss ends: at agent_ttl/3 apart, about
// twice agent_ttl.
const lossyRenewals = 6

// TestNetwork drops packets of one machine of a second cluster whose
// machines each live in a network namespace (fleet-cluster up -netns), with
// iptables rules in that machine's namespace, its link left up: TCP
// connections hang instead of failing as they do with the link down
// (TestPartition). Subtest drop: every packet of a machine that is not the
// engine leader, until each of its units runs elsewhere, then healed (the
// checks of TestPartition). Subtest etcd: only the engine leader's traffic
// with etcd's client port, the other machines still reachable (the same
// checks). Subtest lossy: 25% of the engine leader's packets both ways,
// dropped at random until it renewed its presence lossyRenewals times
// through the loss: nothing may move or restart.
func TestNetwork(t *testing.T) {
	onlyInFullSet(t, "brings up a second cluster, in network namespaces")
	needTool(t, "iptables", "drops the packets of a machine's network namespace")
	c := netnsCluster(t)
	s, err := clusterstate.Load(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	heal := func(t *testing.T) func(machine) {
		return func(m machine) {
			t.Logf("%d packets of %s dropped", droppedPackets(t, m), m.Name)
			if err := flushRules(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	rules := func(t *testing.T, rules ...[]string) func(machine) {
		return func(m machine) {
			t.Cleanup(func() { _ = flushRules(m) })
			for _, r := range rules {
				if err := iptables(m, r...); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Run("drop", func(t *testing.T) {
		c.isolate(t, "nd", false, "packet drop", "healing",
			rules(t, []string{"-I", "INPUT", "-i", "eth0", "-j", "DROP"}, []string{"-I", "OUTPUT", "-o", "eth0", "-j", "DROP"}), heal(t))
	})
	t.Run("etcd", func(t *testing.T) {
		var cut [][]string
		for _, u := range s.EtcdURLs {
			host, port, err := hostPort(u)
			if err != nil {
				t.Fatal(err)
			}
			cut = append(cut,
				[]string{"-I", "OUTPUT", "-o", "eth0", "-p", "tcp", "-d", host, "--dport", port, "-j", "DROP"},
				[]string{"-I", "INPUT", "-i", "eth0", "-p", "tcp", "-s", host, "--sport", port, "-j", "DROP"})
		}
		c.isolate(t, "ne", true, "partition from etcd", "healing", rules(t, cut...), heal(t))
	})
	t.Run("lossy", func(t *testing.T) { c.lossy(t, "nl", 0.25) })
}

// lossy starts six units (instances of prefix@.service), drops packets of
// the engine leader's machine both ways at random with probability p until
// it renewed its presence lossyRenewals times through the loss, then ends
// the loss. Nothing may move, restart or run twice; the number of packets
// dropped, the failed renewals and who leads afterwards are logged.
func (c *cluster) lossy(t *testing.T, prefix string, p float64) {
	log := filepath.Join(t.TempDir(), "starts")
	dir := c.unitDir(t, map[string]string{prefix + "@.service": loggedService(log)})
	units := instances(prefix, 6)
	c.ctl(t, c.machines[0], dir, append([]string{"start"}, units...)...)
	globals := []string{beaconUnit}
	st := c.steadyState(t, units, globals)
	lead := st.lead
	ok0, failed0 := renewals(t, lead)
	prob := strconv.FormatFloat(p, 'f', -1, 64)
	t.Logf("dropping %s of the packets of the engine leader %s, which runs %v", prob, lead.Name, unitsOn(st.before, units, lead.Name))

	w := c.watch(units)
	t.Cleanup(func() { _ = flushRules(lead) })
	for _, r := range [][]string{
		{"-I", "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random", "--probability", prob, "-j", "DROP"},
		{"-I", "OUTPUT", "-o", "eth0", "-m", "statistic", "--mode", "random", "--probability", prob, "-j", "DROP"},
	} {
		if err := iptables(lead, r...); err != nil {
			t.Fatal(err)
		}
	}
	lossStart := time.Now()
	eventually(t, 2*waitLimit, fmt.Sprintf("%d presence renewals of %s through the lossy link", lossyRenewals, lead.Name), func() error {
		ok, _ := renewals(t, lead)
		if ok < ok0+lossyRenewals {
			return fmt.Errorf("%v renewals: %w", ok-ok0, errNotYet)
		}
		return nil
	})
	dropped := droppedPackets(t, lead)
	if err := flushRules(lead); err != nil {
		t.Fatal(err)
	}
	ok, failed := renewals(t, lead)
	t.Logf("loss ended after %v: %d packets dropped, %v presence renewals ok and %v failed during it",
		time.Since(lossStart).Round(time.Millisecond), dropped, ok-ok0, failed-failed0)
	if dropped == 0 {
		t.Errorf("no packet of %s dropped: the loss did not happen", lead.Name)
	}

	c.barrier(t, dir, lead, prefix+"-barrier.service")
	c.checkNothingMoved(t, st, units, globals, log, "the loss")
	logOverlaps(t, w.end(t), nil)
	if l, err := c.leader(c.machines); err == nil {
		t.Logf("engine leader after the loss: %s (was %s)", l.Name, lead.Name)
	}
}

// renewals reads machine m's presence renewals, successful and failed.
func renewals(t *testing.T, m machine) (ok, failed float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := clusterprobe.Metrics(ctx, m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	return s[`fleet_presence_renewals_total{result="ok"}`], s[`fleet_presence_renewals_total{result="error"}`]
}

// needTool skips the test when tool is not in PATH (fails instead under
// CI=true); why says what the test needs it for.
func needTool(t *testing.T, tool, why string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not in PATH: the test %s", tool, why)
		}
		t.Skipf("%s not in PATH: the test %s", tool, why)
	}
}

// iptables runs iptables with args in machine m's network namespace, one
// the cluster made (never the host's own).
func iptables(m machine, args ...string) error {
	if m.Netns == "" {
		return fmt.Errorf("machine %s has no network namespace of its own", m.Name)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + m.Netns, "--", "iptables", "-w"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s in %s: %w: %s", strings.Join(args, " "), m.Netns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// flushRules removes every rule of machine m's namespace: it has none but
// the tests'.
func flushRules(m machine) error {
	if err := iptables(m, "-F", "INPUT"); err != nil {
		return err
	}
	return iptables(m, "-F", "OUTPUT")
}

// droppedPackets counts the packets the DROP rules of machine m's namespace
// dropped.
func droppedPackets(t *testing.T, m machine) int {
	t.Helper()
	n := 0
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+m.Netns, "--", "iptables", "-w", "-n", "-v", "-x", "-L", chain).Output()
		if err != nil {
			t.Fatalf("iptables -L %s in %s: %v", chain, m.Netns, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 2 && f[2] == "DROP" {
				k, err := strconv.Atoi(f[0])
				if err != nil {
					t.Fatalf("iptables -L %s in %s: line %q: %v", chain, m.Netns, line, err)
				}
				n += k
			}
		}
	}
	return n
}

// hostPort splits an etcd client URL into host and port.
func hostPort(endpoint string) (string, string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", "", fmt.Errorf("etcd endpoint %q: %w", endpoint, err)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return "", "", fmt.Errorf("etcd endpoint %q: want host and port", endpoint)
	}
	return u.Hostname(), u.Port(), nil
}
