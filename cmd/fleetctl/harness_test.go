package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/daemon"
	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// sharedEtcd is one embedded etcd for the whole package; every cluster lives
// under its own key prefix.
var sharedEtcd *etcd.Embedded

func TestMain(m *testing.M) {
	srv, err := etcd.StartEmbedded(context.Background(), etcd.EmbeddedConfig{TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedded etcd:", err)
		os.Exit(1)
	}
	sharedEtcd = srv
	code := m.Run()
	srv.Close()
	os.Exit(code)
}

// testMachines are the machines of a test cluster: ID, IP and metadata.
var testMachines = []struct {
	id, ip string
	meta   map[string]string
}{
	{"113f16a7c0ffee00000000000000000a", "172.17.8.101", map[string]string{"role": "web"}},
	{"2c4a9d1e00000000000000000000000b", "172.17.8.102", map[string]string{"role": "db", "disk": "ssd"}},
	{"3e5b7f2200000000000000000000000c", "172.17.8.103", nil},
}

var prefixSeq atomic.Int64

// cluster is three in-process fleetd daemons (fake unit managers) on the
// shared etcd under a fresh key prefix.
type cluster struct {
	prefix  string
	sockets []string
	daemons []*daemon.Daemon
}

// startCluster starts the daemons and waits until all three are listed;
// adjust, if given, changes each machine's configuration first.
func startCluster(t *testing.T, adjust ...func(i int, cfg *config.Config)) *cluster {
	t.Helper()
	cl := &cluster{prefix: fmt.Sprintf("/fleetctl-test-%d-%d/", os.Getpid(), prefixSeq.Add(1))}
	for i, m := range testMachines {
		dir, err := os.MkdirTemp("", "fctl-") // short: socket paths stay under 108 bytes
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		idFile := filepath.Join(dir, "machine-id")
		if err := os.WriteFile(idFile, []byte(m.id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := config.Defaults()
		cfg.EtcdServers = sharedEtcd.Endpoints()
		cfg.EtcdKeyPrefix = cl.prefix
		cfg.UnitManager = config.ManagerFake
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.MachineIDFile = idFile
		cfg.APISocket = filepath.Join(dir, "fleet.sock")
		cfg.PublicIP = m.ip
		cfg.Metadata = m.meta
		cfg.AgentTTL = 5 * time.Second
		cfg.EngineReconcileInterval = 100 * time.Millisecond
		for _, f := range adjust {
			f(i, &cfg)
		}
		d, err := daemon.Start(context.Background(), daemon.Options{Config: cfg, Version: "test"})
		if err != nil {
			t.Fatalf("start fleetd %s: %v", m.id, err)
		}
		t.Cleanup(func() { _ = d.StopMode(context.Background(), false) })
		cl.daemons = append(cl.daemons, d)
		cl.sockets = append(cl.sockets, cfg.APISocket)
	}
	cl.waitFor(t, "three machines listed", func(c fleetclient.Client) bool {
		ms, err := c.Machines(context.Background())
		return err == nil && len(ms) == len(testMachines)
	})
	return cl
}

// waitFor polls cond with a client on the cluster's registry until it
// holds, failing the test after 20 s.
func (cl *cluster) waitFor(t *testing.T, what string, cond func(fleetclient.Client) bool) {
	t.Helper()
	c, err := fleetclient.NewEtcd(context.Background(), fleetclient.EtcdConfig{
		Client: etcd.ClientConfig{Endpoints: sharedEtcd.Endpoints()}, Prefix: cl.prefix, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, 20*time.Second, what, func() bool { return cond(c) })
}

// eventually polls cond until it holds, failing the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// driverEnv is the environment that points fleetctl at the cluster through
// one driver.
func (cl *cluster) driverEnv(driver string) map[string]string {
	env := map[string]string{"FLEETCTL_REQUEST_TIMEOUT": "5"}
	switch driver {
	case "api":
		env["FLEETCTL_ENDPOINT"] = "unix://" + cl.sockets[0]
	case "etcd":
		env["FLEETCTL_DRIVER"] = "etcd"
		env["FLEETCTL_ENDPOINT"] = strings.Join(sharedEtcd.Endpoints(), ",")
		env["FLEETCTL_ETCD_KEY_PREFIX"] = cl.prefix
	}
	return env
}

// result is one fleetctl run's outcome.
type result struct {
	stdout, stderr string
	code           int
}

// fleetctl runs one command line in-process with env, as on machine
// localID (the machine-id file fleetctl reads).
func fleetctl(t *testing.T, env map[string]string, localID string, args ...string) result {
	t.Helper()
	return fleetctlWith(t, env, localID, func(*app) {}, args...)
}

// fleetctlWith is fleetctl with the app adjusted by set before it runs.
func fleetctlWith(t *testing.T, env map[string]string, localID string, set func(*app), args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	a.pollInterval = 10 * time.Millisecond
	idFile := filepath.Join(t.TempDir(), "machine-id")
	if err := os.WriteFile(idFile, []byte(localID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.machineIDFile = idFile
	a.execLocal = func(_ context.Context, name string, args ...string) (int, error) {
		fmt.Fprintf(&out, "[local] %s %s\n", name, strings.Join(args, " "))
		if len(args) > 0 && strings.Contains(strings.Join(args, " "), "fail") {
			return 3, nil
		}
		return 0, nil
	}
	set(a)
	code := a.run(t.Context(), args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}
