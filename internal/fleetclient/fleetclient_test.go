package fleetclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/daemon"
	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// clients starts one fleetd (fake unit manager) on an embedded etcd and
// returns a client of each driver on it.
func clients(t *testing.T) map[string]fleetclient.Client {
	t.Helper()
	ctx := context.Background()
	srv, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dir, err := os.MkdirTemp("", "fclient-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	idFile := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(idFile, []byte("m1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.EtcdServers = srv.Endpoints()
	cfg.EtcdKeyPrefix = "/fleetclient-test/"
	cfg.UnitManager = config.ManagerFake
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.MachineIDFile = idFile
	cfg.APISocket = filepath.Join(dir, "fleet.sock")
	cfg.PublicIP = "10.0.0.1"
	cfg.EngineReconcileInterval = 100 * time.Millisecond
	d, err := daemon.Start(ctx, daemon.Options{Config: cfg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.StopMode(context.Background(), false) })
	a, err := fleetclient.NewAPI(api.ClientConfig{Endpoint: "unix://" + cfg.APISocket, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e, err := fleetclient.NewEtcd(ctx, fleetclient.EtcdConfig{Client: etcd.ClientConfig{Endpoints: srv.Endpoints()}, Prefix: cfg.EtcdKeyPrefix, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); e.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms, err := a.Machines(ctx)
		if err == nil && len(ms) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleetd not listed: %v %v", ms, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return map[string]fleetclient.Client{"api": a, "etcd": e}
}

var opts = []api.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}

// TestDriversAgree: both drivers report missing units as ErrNotFound,
// refuse what the API refuses, and read the same units and machines.
func TestDriversAgree(t *testing.T) {
	ctx := context.Background()
	cs := clients(t)
	for name, c := range cs {
		if _, err := c.Unit(ctx, "nosuch.service"); !errors.Is(err, fleetclient.ErrNotFound) {
			t.Errorf("%s: Unit of a missing unit: %v", name, err)
		}
		if _, err := c.Unit(ctx, "bad name"); !errors.Is(err, fleetclient.ErrNotFound) {
			t.Errorf("%s: Unit of an invalid name: %v", name, err)
		}
		if err := c.SetTargetState(ctx, "nosuch.service", "launched"); !errors.Is(err, fleetclient.ErrNotFound) {
			t.Errorf("%s: SetTargetState of a missing unit: %v", name, err)
		}
		if err := c.DestroyUnit(ctx, "nosuch.service"); !errors.Is(err, fleetclient.ErrNotFound) {
			t.Errorf("%s: DestroyUnit of a missing unit: %v", name, err)
		}
		tmpl := name + "@.service"
		if err := c.CreateUnit(ctx, api.Unit{Name: tmpl, Options: opts, DesiredState: "launched"}); err == nil {
			t.Errorf("%s: a template was created launched", name)
		}
		if err := c.CreateUnit(ctx, api.Unit{Name: tmpl, Options: opts}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.SetTargetState(ctx, tmpl, "loaded"); err == nil {
			t.Errorf("%s: a template was loaded", name)
		}
		bad := []api.UnitOption{{Section: "X-Fleet", Name: "MachineID", Value: "a"}, {Section: "X-Fleet", Name: "Global", Value: "true"}}
		if err := c.CreateUnit(ctx, api.Unit{Name: name + "-bad.service", Options: bad}); err == nil {
			t.Errorf("%s: MachineID with Global was accepted", name)
		}
		u := api.Unit{Name: name + ".service", Options: opts}
		if err := c.CreateUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
		u.Options = append(u.Options, api.UnitOption{Section: "Unit", Name: "Description", Value: name})
		if err := c.ReplaceUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := c.SetTargetState(ctx, u.Name, "loaded"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ua, errA := cs["api"].Units(ctx)
		ue, errE := cs["etcd"].Units(ctx)
		if errA != nil || errE != nil {
			t.Fatal(errA, errE)
		}
		loaded := len(ua) == 4 && ua[0].CurrentState == "loaded" && ua[2].CurrentState == "loaded"
		if loaded && reflect.DeepEqual(ua, ue) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("units differ or not loaded:\napi  %+v\netcd %+v", ua, ue)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sa, errA := cs["api"].UnitStates(ctx)
	se, errE := cs["etcd"].UnitStates(ctx)
	if errA != nil || errE != nil || !reflect.DeepEqual(sa, se) || len(sa) != 2 {
		t.Errorf("states differ (%v, %v):\napi  %+v\netcd %+v", errA, errE, sa, se)
	}
	ma, errA := cs["api"].Machines(ctx)
	me, errE := cs["etcd"].Machines(ctx)
	if errA != nil || errE != nil || !reflect.DeepEqual(ma, me) || len(ma) != 1 {
		t.Errorf("machines differ (%v, %v):\napi  %+v\netcd %+v", errA, errE, ma, me)
	}
}
