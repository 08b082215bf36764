package systemdtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-rebuild/fleet/internal/cgroups"
)

// makeCgroups creates a cgroup named name beside this process's own cgroup in
// every hierarchy, and returns the directories and the path as /proc/PID/cgroup
// shows it in the first hierarchy.
func makeCgroups(name string) (dirs []string, path string, err error) {
	hs, err := cgroups.Own()
	if err != nil {
		return nil, "", err
	}
	for i, h := range hs {
		d := filepath.Join(h.Self, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return dirs, "", errors.Join(fmt.Errorf("create cgroup: %w", err), cgroups.Remove(dirs))
		}
		dirs = append(dirs, d)
		if i == 0 {
			path = "/" + strings.TrimPrefix(strings.TrimPrefix(d, h.Mount), "/")
		}
	}
	return dirs, path, nil
}
