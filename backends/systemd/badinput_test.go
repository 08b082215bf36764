package systemd_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-rebuild/fleet/core"
)

// listTree lists every path under dir, to show nothing changed.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBadNamesTouchNothing(t *testing.T) {
	um := sharedManager(t)
	m := open(t, um, nil)
	before := listTree(t, um.RuntimeDir())
	for _, name := range []string{
		"../escape.service", "a/b.service", "/etc/passwd.service", "..", ".", "nul\x00.service",
		"sp ace.service", "no-suffix", "x.exe", strings.Repeat("a", 300) + ".service", "@x.service", "",
	} {
		errs := map[string]error{
			"WriteUnit":  m.WriteUnit(t.Context(), name, []byte("[Service]\nExecStart=/bin/true\n")),
			"RemoveUnit": m.RemoveUnit(t.Context(), name),
			"Start":      m.Start(t.Context(), name),
			"Stop":       m.Stop(t.Context(), name),
		}
		for op, err := range errs {
			var ne *core.NameError
			if !errors.As(err, &ne) {
				t.Errorf("%s(%q) = %v, want a *core.NameError", op, name, err)
			}
		}
	}
	if after := listTree(t, um.RuntimeDir()); !slices.Equal(before, after) {
		t.Fatalf("bad names changed the runtime directory:\nbefore %q\nafter  %q", before, after)
	}
}

func TestBadContentsRejected(t *testing.T) {
	m := open(t, sharedManager(t), nil)
	big := make([]byte, core.MaxUnitFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	for what, data := range map[string][]byte{
		"oversized": big,
		"NUL byte":  []byte("[Service]\nExecStart=/bin/true\x00\n"),
	} {
		err := m.WriteUnit(t.Context(), "bad.service", data)
		var fe *core.UnitFileError
		if !errors.As(err, &fe) {
			t.Errorf("WriteUnit(%s) = %v, want a *core.UnitFileError", what, err)
		}
	}
	if list, err := m.Units(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("Units after rejected writes = %v, %v; want none", list, err)
	}
}

func TestUnitSystemdRejects(t *testing.T) {
	m := open(t, sharedManager(t), nil)
	install(t, m, "bad-setting.service", "[Service]\nType=simple\n")
	list, err := m.Units(t.Context())
	if err != nil || len(list) != 1 || list[0].LoadState != "bad-setting" {
		t.Fatalf("Units = %+v, %v; want bad-setting.service with LoadState bad-setting", list, err)
	}
	err = m.Start(t.Context(), "bad-setting.service")
	if err == nil || !strings.Contains(err.Error(), "bad-setting.service") || !strings.Contains(err.Error(), "bad unit file setting") {
		t.Fatalf("Start of a unit systemd rejects = %v; want an error naming the unit and the bad setting", err)
	}
	// The agent carries on with the other units.
	install(t, m, "fine.service", "[Service]\nExecStart=/bin/sleep 600\n")
	if err := m.Start(t.Context(), "fine.service"); err != nil {
		t.Fatal(err)
	}
	waitUnit(t, m, "fine.service", active)
}

func TestStartWithoutFile(t *testing.T) {
	m := open(t, sharedManager(t), nil)
	for op, err := range map[string]error{
		"Start": m.Start(t.Context(), "absent.service"),
		"Stop":  m.Stop(t.Context(), "absent.service"),
	} {
		if !errors.Is(err, core.ErrUnitNotFound) {
			t.Errorf("%s of a unit without a file = %v, want ErrUnitNotFound", op, err)
		}
	}
	if err := m.RemoveUnit(t.Context(), "absent.service"); err != nil {
		t.Errorf("RemoveUnit of a unit without a file = %v, want nil (nothing to do)", err)
	}
}
