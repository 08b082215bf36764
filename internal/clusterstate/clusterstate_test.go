package clusterstate

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of an empty directory: %v, want fs.ErrNotExist", err)
	}
	s := &State{Dir: dir, UnitManager: "fake", EtcdURLs: []string{"http://127.0.0.1:2379"},
		Machines: []Machine{{Name: "m1", ID: "abc", Socket: "/s", EtcdHost: true}}}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(Proc{Role: "fleetd", Name: "m1", PID: 7, Start: 9}); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Machines, s.Machines) || !reflect.DeepEqual(got.Procs, s.Procs) || got.UnitManager != "fake" {
		t.Errorf("loaded %+v, saved %+v", got, s)
	}
	if err := os.WriteFile(dir+"/"+File, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load of a malformed state: no error")
	}
}

func TestAliveTellsAReusedPIDApart(t *testing.T) {
	pid := os.Getpid()
	start, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !(Proc{PID: pid, Start: start}).Alive() {
		t.Error("this process is not alive")
	}
	if (Proc{PID: pid, Start: start + 1}).Alive() {
		t.Error("a process with another start time is alive")
	}
}
