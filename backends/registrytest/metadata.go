package registrytest

import (
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

func patch(t *testing.T, reg core.Registry, ops ...core.MetadataOp) {
	t.Helper()
	if err := reg.PatchMetadata(t.Context(), ops); err != nil {
		t.Fatalf("PatchMetadata(%v): %v", ops, err)
	}
}

// Dynamic metadata overrides and removes announced keys, shows in Machines and
// Machine, and outlives the machine's presence.
func testDynamicMetadata(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	heartbeat(t, reg, "m1", "s1")
	heartbeat(t, reg, "m2", "s2")
	patch(t, reg,
		core.MetadataOp{Machine: "m1", Key: "region", Value: "eu"},
		core.MetadataOp{Machine: "m1", Key: "name", Value: ""},
		core.MetadataOp{Machine: "m1", Key: "disk", Value: "ssd"},
		core.MetadataOp{Machine: "m3", Key: "role", Value: "db"})
	want := map[string]string{"region": "eu", "disk": "ssd"}
	ms := listMachines(t, reg)
	wantEqual(t, ms[0].Metadata, want, "m1's metadata in Machines")
	wantEqual(t, ms[1].Metadata, machine("m2").Metadata, "m2's metadata in Machines")
	m1, err := reg.Machine(ctx, "m1")
	if err != nil {
		t.Fatalf("Machine(m1): %v", err)
	}
	wantEqual(t, m1.Metadata, want, "Machine(m1).Metadata")
	_, err = reg.Machine(ctx, "m3")
	wantErrIs(t, err, core.ErrNotPresent, "Machine(m3) before it joins")

	heartbeat(t, reg, "m3", "s3")
	m3, err := reg.Machine(ctx, "m3")
	if err != nil {
		t.Fatalf("Machine(m3): %v", err)
	}
	wantEqual(t, m3.Metadata["role"], "db", "m3's role after it joined")

	patch(t, reg, core.MetadataOp{Machine: "m1", Key: "disk", Value: ""})
	in.Advance(ttl + ttl/2)
	heartbeat(t, reg, "m1", "s9")
	m1, err = reg.Machine(ctx, "m1")
	if err != nil {
		t.Fatalf("Machine(m1) after it returned: %v", err)
	}
	wantEqual(t, m1.Metadata, map[string]string{"region": "eu"}, "m1's metadata after it returned")
}

func testNotifyOnMetadata(t *testing.T, in Instance) {
	reg := in.Registry
	engine := subscribe(t, reg, engineScope)
	m1 := subscribe(t, reg, core.Scope{Machine: "m1"})
	m2 := subscribe(t, reg, core.Scope{Machine: "m2"})
	patch(t, reg, core.MetadataOp{Machine: "m1", Key: "role", Value: "db"})
	expectWake(t, engine, "PatchMetadata of m1")
	expectWake(t, m1, "PatchMetadata of m1")
	expectNoWake(t, m2, "PatchMetadata of m1")
}
