package systemd

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// Tests that need no systemd: configuration, names and paths, and what Open
// does when nothing answers.

func TestResolveUserDefaults(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	c, err := Config{Scope: ScopeUser}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if c.Socket != "/run/user/1000/systemd/private" || c.UnitDir != "/run/user/1000/fleet/units" || c.LinkDir != "/run/user/1000/systemd/user" {
		t.Fatalf("user defaults: socket %q, unit dir %q, link dir %q", c.Socket, c.UnitDir, c.LinkDir)
	}
	if c.CallTimeout != DefaultCallTimeout || c.JobTimeout != DefaultJobTimeout || c.Logger == nil {
		t.Fatalf("defaults not filled in: %+v", c)
	}
}

func TestResolveSystemDefaults(t *testing.T) {
	c, err := Config{Scope: ScopeSystem}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if c.Socket != SystemSocket || c.UnitDir != SystemUnitDir || c.LinkDir != SystemLinkDir {
		t.Fatalf("system defaults: socket %q, unit dir %q, link dir %q", c.Socket, c.UnitDir, c.LinkDir)
	}
}

func TestResolveAuto(t *testing.T) {
	if isSocket(SystemSocket) {
		t.Skip("this host runs a system manager; auto picks it when root")
	}
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	if _, err := (Config{}).resolve(); err == nil {
		t.Fatal("auto scope with no manager anywhere succeeded")
	}
	sock := filepath.Join(rt, "systemd", "private")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := Config{}.resolve()
	if err != nil || c.Scope != ScopeUser || c.Socket != sock {
		t.Fatalf("auto scope with a user manager socket = %+v, %v", c, err)
	}
}

func TestResolveRejects(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	for _, c := range []Config{
		{Scope: ScopeUser},
		{Scope: "session"},
		{Scope: ScopeSystem, UnitDir: "relative/units"},
		{Scope: ScopeSystem, LinkDir: "relative/links"},
	} {
		if _, err := c.resolve(); err == nil {
			t.Errorf("resolve(%+v) succeeded", c)
		}
	}
}

func TestUnitDirKeepsNamesInside(t *testing.T) {
	d := unitDir{path: "/run/fleet/units"}
	if p, err := d.file("web@1.service"); err != nil || p != "/run/fleet/units/web@1.service" {
		t.Fatalf("file(web@1.service) = %q, %v", p, err)
	}
	for _, name := range []string{"../x.service", "a/b.service", "..", "/x.service", "x\x00.service", ""} {
		var ne *core.NameError
		if _, err := d.file(name); !errors.As(err, &ne) {
			t.Errorf("file(%q) = %v, want a *core.NameError", name, err)
		}
	}
}

func TestUnitDirListSkipsWhatIsNotAUnit(t *testing.T) {
	d := unitDir{path: t.TempDir()}
	if err := d.write("a.service", []byte("A")); err != nil {
		t.Fatal(err)
	}
	for name, make := range map[string]func(string) error{
		".fleet-1.tmp": func(p string) error { return os.WriteFile(p, nil, 0o644) },
		"notes.txt":    func(p string) error { return os.WriteFile(p, nil, 0o644) },
		"dir.service":  func(p string) error { return os.Mkdir(p, 0o755) },
		"link.service": func(p string) error { return os.Symlink("/etc/passwd", p) },
	} {
		if err := make(filepath.Join(d.path, name)); err != nil {
			t.Fatal(err)
		}
	}
	files, err := d.list()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].name != "a.service" || files[0].hash != core.HashBytes([]byte("A")) {
		t.Fatalf("list = %+v, want only a.service", files)
	}
	if ok, err := d.has("link.service"); ok || err != nil {
		t.Fatalf("has(link.service) = %v, %v; a symlink is not fleet's file", ok, err)
	}
}

func TestHasInstall(t *testing.T) {
	for in, want := range map[string]bool{
		"[Service]\nExecStart=/bin/true\n":                              false,
		"[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=a\n":     true,
		"[Service]\nExecStart=/bin/echo [Install]\n":                    false,
		"[Unit]\nDescription=x\n  [Install]  \nWantedBy=default.target": true,
	} {
		if got := hasInstall([]byte(in)); got != want {
			t.Errorf("hasInstall(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestOpenWithNothingListening(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(t.Context(), Config{Scope: ScopeUser, Socket: filepath.Join(dir, "none"), UnitDir: filepath.Join(dir, "units")})
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Open with no socket = %v, want ErrUnavailable", err)
	}
}

// TestOpenIsBounded: a socket that accepts but never speaks D-Bus must not
// hang Open past its context.
func TestOpenIsBounded(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "mute")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Open(ctx, Config{Scope: ScopeUser, Socket: sock, UnitDir: filepath.Join(dir, "units")})
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Open on a mute socket = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Open took %v with a 200ms context", d)
	}
}

func TestDanglingLinks(t *testing.T) {
	root := t.TempDir()
	d := unitDir{path: filepath.Join(root, "units")}
	links := filepath.Join(root, "links")
	if names, err := d.danglingLinks(links); err != nil || len(names) != 0 {
		t.Fatalf("danglingLinks of a missing directory = %v, %v; want none", names, err)
	}
	if err := d.write("kept.service", []byte("K")); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"kept.service":                      filepath.Join(d.path, "kept.service"),
		"gone.service":                      filepath.Join(d.path, "gone.service"),
		"default.target.wants/gone.service": filepath.Join(d.path, "gone.service"),
		"default.target.wants/w.service":    filepath.Join(d.path, "w.service"),
		"rel.service":                       "../units/rel.service",
		"elsewhere.service":                 filepath.Join(root, "other", "elsewhere.service"),
		"a/b/deep.service":                  filepath.Join(d.path, "deep.service"),
		".fleet-1.tmp":                      filepath.Join(d.path, ".fleet-1.tmp"),
	} {
		p := filepath.Join(links, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	names, err := d.danglingLinks(links)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"gone.service", "rel.service", "w.service"}; !slices.Equal(names, want) {
		t.Fatalf("danglingLinks = %q, want %q", names, want)
	}
}

func TestRemoveTemps(t *testing.T) {
	d := unitDir{path: t.TempDir()}
	for _, name := range []string{".fleet-1.tmp", ".fleet-abc.tmp", "a.service", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(d.path, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.removeTemps(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(d.path)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"a.service", "notes.txt"}; !slices.Equal(left, want) {
		t.Fatalf("after removeTemps: %q, want %q", left, want)
	}
}

func TestNameLengthLimit(t *testing.T) {
	d := unitDir{path: "/run/fleet/units"}
	name := func(n int) string { return strings.Repeat("a", n-len(".service")) + ".service" }
	if _, err := d.file(name(255)); err != nil {
		t.Fatalf("a 255-byte name: %v", err)
	}
	_, err := d.file(name(256))
	var ne *core.NameError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "255 bytes") {
		t.Fatalf("a 256-byte name: %v, want a *core.NameError naming the 255-byte limit", err)
	}
}
