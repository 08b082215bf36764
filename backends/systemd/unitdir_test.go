package systemd_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnitFileModeWhateverUmask: fleet writes its unit files (and makes its
// directory) writable by their owner only, whatever the process umask. Not
// parallel: the umask is the process's.
func TestUnitFileModeWhateverUmask(t *testing.T) {
	m := open(t, sharedManager(t), nil)
	dir := m.Config().UnitDir
	for i, mask := range []int{0o000, 0o077, 0o022, 0o777} {
		name := "mode-" + string(rune('a'+i)) + ".service"
		old := syscall.Umask(mask)
		err := m.WriteUnit(t.Context(), name, []byte("[Service]\nExecStart=/bin/true\n"))
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("WriteUnit(%s) under umask %03o: %v", name, mask, err)
		}
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || int(st.Uid) != os.Getuid() {
			t.Errorf("%s written under umask %03o: mode %s, owner %d; want a regular file, -rw-r--r--, owner %d",
				name, mask, fi.Mode(), st.Uid, os.Getuid())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("unit directory %s is mode %s: writable by others", dir, fi.Mode())
	}
}

// TestPlantedEntriesNotFollowed: a symbolic link or a FIFO put in fleet's
// directory in place of a unit's file is neither followed nor read: writing
// that unit fails at once with an error that names it and says why, and the
// files outside are left as they were.
func TestPlantedEntriesNotFollowed(t *testing.T) {
	m := open(t, sharedManager(t), nil)
	dir := m.Config().UnitDir
	outside := t.TempDir()
	target := filepath.Join(outside, "target")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("not fleet's"), 0o600); err != nil {
		t.Fatal(err)
	}
	plant := map[string]func(p string) error{
		"link.service":     func(p string) error { return os.Symlink(target, p) },
		"dangling.service": func(p string) error { return os.Symlink(filepath.Join(outside, "created"), p) },
		"relative.service": func(p string) error { return os.Symlink("../../../../../../../../"+target, p) },
		"fifo.service":     func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"dir.service":      func(p string) error { return os.Mkdir(p, 0o755) },
	}
	for name, plantAt := range plant {
		if err := plantAt(filepath.Join(dir, name)); err != nil {
			t.Fatalf("plant %s: %v", name, err)
		}
		err := m.WriteUnit(t.Context(), name, []byte("[Service]\nExecStart=/bin/true\n"))
		if err == nil || !strings.Contains(err.Error(), name) ||
			!(strings.Contains(err.Error(), "symbolic link") || strings.Contains(err.Error(), "not a regular file")) {
			t.Errorf("WriteUnit over a planted %s = %v; want an error naming it and why", name, err)
		}
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != "not fleet's" {
		t.Errorf("file behind the link now holds %q (%v)", data, err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "created")); err == nil {
		t.Errorf("a write followed the dangling link and created its target")
	}
	if list, err := m.Units(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("Units with only planted entries = %v, %v; want none", list, err)
	}
	for name := range plant {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}
