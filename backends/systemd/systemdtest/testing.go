package systemdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/fleet-rebuild/fleet/internal/cgroups"
)

// Check reports why a user manager cannot be started here, or nil if it can:
// root is needed (for mount namespaces and cgroups), and so are the systemd
// binary, unshare, mount, systemctl and a writable cgroup hierarchy.
func Check(binary string) error {
	if binary == "" {
		binary = DefaultBinary
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (mount namespace and cgroups)")
	}
	if fi, err := os.Stat(binary); err != nil || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("no systemd binary at %s", binary)
	}
	for _, tool := range []string{"unshare", "mount", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found in PATH", tool)
		}
	}
	hs, err := cgroups.Own()
	if err != nil {
		return err
	}
	for _, h := range hs {
		if err := checkWritable(h.Self); err != nil {
			return err
		}
	}
	return nil
}

func checkWritable(dir string) error {
	d, err := os.MkdirTemp(dir, "fleet-check-")
	if err != nil {
		return fmt.Errorf("cannot create a cgroup under %s: %w", dir, err)
	}
	return os.Remove(d)
}

// SkipOrFail skips the test with the reason, or fails it when CI=true: in CI
// a missing systemd is a broken environment, not a reason to skip.
func SkipOrFail(t testing.TB, reason error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("real systemd unavailable and CI=true, not skipping: %v", reason)
	}
	t.Skipf("real systemd unavailable: %v", reason)
}

// New starts a user manager for a test, skipping (or failing when CI=true) if
// one cannot be started here, and stops it when the test ends.
func New(t testing.TB, opts Options) *UserManager {
	t.Helper()
	if err := Check(opts.Binary); err != nil {
		SkipOrFail(t, err)
	}
	um, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start systemd user manager: %v", err)
	}
	t.Cleanup(func() {
		if err := um.Stop(); err != nil {
			t.Errorf("stop systemd user manager: %v", err)
		}
	})
	return um
}
