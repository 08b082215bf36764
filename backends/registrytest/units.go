package registrytest

import (
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

func testCreateUnitStoresUnitAndContents(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	a, aContents := newUnit("a.service", false, "v1")
	b, bContents := newUnit("b.service", true, "v1")
	b.TargetState = core.Launched
	for _, c := range []struct {
		u        core.Unit
		contents []byte
	}{{a, aContents}, {b, bContents}} {
		if err := reg.CreateUnit(ctx, c.u, c.contents); err != nil {
			t.Fatalf("CreateUnit(%s): %v", c.u.Name, err)
		}
	}
	wantEqual(t, listUnits(t, reg), []core.Unit{a, b}, "Units")
	wantEqual(t, listGlobalUnits(t, reg), []core.Unit{b}, "GlobalUnits")
	for _, c := range []struct {
		h    core.Hash
		want []byte
	}{{a.Hash, aContents}, {b.Hash, bContents}} {
		got, err := reg.UnitContents(ctx, c.h)
		if err != nil {
			t.Fatalf("UnitContents(%s): %v", c.h, err)
		}
		wantEqual(t, string(got), string(c.want), "UnitContents("+string(c.h)+")")
	}
}

func testCreateUnitIsCreateOnce(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	orig, origContents := newUnit("x.service", false, "v1")
	if err := reg.CreateUnit(ctx, orig, origContents); err != nil {
		t.Fatalf("CreateUnit: %v", err)
	}
	again, againContents := newUnit("x.service", true, "v2")
	again.TargetState = core.Launched
	wantErrIs(t, reg.CreateUnit(ctx, again, againContents), core.ErrUnitExists, "second CreateUnit(x.service)")

	wantEqual(t, listUnits(t, reg), []core.Unit{orig}, "Units after the rejected create")
	wantEqual(t, len(listGlobalUnits(t, reg)), 0, "number of GlobalUnits after the rejected create")
	got, err := reg.UnitContents(ctx, orig.Hash)
	if err != nil {
		t.Fatalf("UnitContents(original hash): %v", err)
	}
	wantEqual(t, string(got), string(origContents), "contents under the original hash")
}

func testUnitsSortedByName(t *testing.T, in Instance) {
	reg := in.Registry
	for _, n := range []string{"m.service", "e.timer", "z.service", "a@1.service", "b.socket", "a.service"} {
		createUnit(t, reg, n, n == "z.service" || n == "a@1.service" || n == "e.timer")
	}
	wantEqual(t, unitNames(listUnits(t, reg)), "[a.service a@1.service b.socket e.timer m.service z.service]", "Units")
	wantEqual(t, unitNames(listGlobalUnits(t, reg)), "[a@1.service e.timer z.service]", "GlobalUnits")
}

func testUnitContentsUnknownHash(t *testing.T, in Instance) {
	createUnit(t, in.Registry, "a.service", false)
	_, err := in.Registry.UnitContents(t.Context(), core.HashBytes([]byte("never stored")))
	wantErrIs(t, err, core.ErrUnitNotFound, "UnitContents(unknown hash)")
}

func testDestroyUnit(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	createUnit(t, reg, "a.service", false)
	createUnit(t, reg, "b.service", true)
	createUnit(t, reg, "c.service", false)
	for _, n := range []string{"b.service", "a.service"} {
		if err := reg.DestroyUnit(ctx, n); err != nil {
			t.Fatalf("DestroyUnit(%s): %v", n, err)
		}
	}
	wantEqual(t, unitNames(listUnits(t, reg)), "[c.service]", "Units after destroying a and b")
	wantEqual(t, unitNames(listGlobalUnits(t, reg)), "[]", "GlobalUnits after destroying global b")
	wantErrIs(t, reg.DestroyUnit(ctx, "a.service"), core.ErrUnitNotFound, "DestroyUnit(a.service) again")
	wantErrIs(t, reg.DestroyUnit(ctx, "never.service"), core.ErrUnitNotFound, "DestroyUnit(never.service)")
}

func testDestroyUnitKeepsPlacement(t *testing.T, in Instance) {
	reg := in.Registry
	createUnit(t, reg, "a.service", false)
	fence := acquire(t, reg, "e1")
	apply(t, reg, fence, place("a.service", "m1", core.Launched))
	if err := reg.DestroyUnit(t.Context(), "a.service"); err != nil {
		t.Fatalf("DestroyUnit: %v", err)
	}
	wantEqual(t, placementKeys(listPlacements(t, reg)), "[a.service@m1:launched]", "Placements after DestroyUnit")
}

func testRecreateAfterDestroy(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	createUnit(t, reg, "a.service", false)
	if err := reg.DestroyUnit(ctx, "a.service"); err != nil {
		t.Fatalf("DestroyUnit: %v", err)
	}
	u, contents := newUnit("a.service", true, "v2")
	if err := reg.CreateUnit(ctx, u, contents); err != nil {
		t.Fatalf("CreateUnit after DestroyUnit: %v", err)
	}
	wantEqual(t, listUnits(t, reg), []core.Unit{u}, "Units after re-creating")
	got, err := reg.UnitContents(ctx, u.Hash)
	if err != nil {
		t.Fatalf("UnitContents(new hash): %v", err)
	}
	wantEqual(t, string(got), string(contents), "contents of the re-created unit")
}

func testSetTargetState(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	a := createUnit(t, reg, "a.service", false)
	g := createUnit(t, reg, "g.service", true)
	if err := reg.SetTargetState(ctx, "a.service", core.Launched); err != nil {
		t.Fatalf("SetTargetState(a.service): %v", err)
	}
	if err := reg.SetTargetState(ctx, "g.service", core.Loaded); err != nil {
		t.Fatalf("SetTargetState(g.service): %v", err)
	}
	a.TargetState, g.TargetState = core.Launched, core.Loaded
	wantEqual(t, listUnits(t, reg), []core.Unit{a, g}, "Units after SetTargetState")
	wantEqual(t, listGlobalUnits(t, reg), []core.Unit{g}, "GlobalUnits after SetTargetState")
	wantErrIs(t, reg.SetTargetState(ctx, "never.service", core.Launched), core.ErrUnitNotFound, "SetTargetState(never.service)")
}

func testUnitReadsOne(t *testing.T, in Instance) {
	reg, ctx := in.Registry, t.Context()
	a := createUnit(t, reg, "a.service", false)
	g := createUnit(t, reg, "g.service", true)
	for _, want := range []core.Unit{a, g} {
		got, err := reg.Unit(ctx, want.Name)
		if err != nil {
			t.Fatalf("Unit(%s): %v", want.Name, err)
		}
		wantEqual(t, got.Revision, revisionOf(t, reg, want.Name), "Unit("+want.Name+").Revision")
		got.Revision = 0
		wantEqual(t, got, want, "Unit("+want.Name+")")
	}
	_, err := reg.Unit(ctx, "never.service")
	wantErrIs(t, err, core.ErrUnitNotFound, "Unit(never.service)")
}
