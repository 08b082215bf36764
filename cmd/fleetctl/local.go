package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// runCommand runs a command on this machine with fleetctl's streams and
// returns its exit code.
func (a *app) runCommand(ctx context.Context, name string, args ...string) (int, error) {
	c := exec.CommandContext(ctx, name, args...)
	c.Stdin, c.Stdout, c.Stderr = a.stdin, a.stdout, a.stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// localMachineID reads this machine's ID, or "" if it cannot be read.
func (a *app) localMachineID() string {
	data, err := os.ReadFile(a.machineIDFile)
	if err != nil {
		return ""
	}
	id, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(id)
}

// placedUnit looks up a unit for status and journal; missing and inactive
// units are errors with fleet's messages (inactive names the verb).
func (a *app) placedUnit(ctx context.Context, cmd *cobra.Command, arg, inactiveMsg string) (api.Unit, error) {
	name := unitName(arg)
	c, err := a.clientFor(ctx, cmd)
	if err != nil {
		return api.Unit{}, err
	}
	u, err := c.Unit(ctx, name)
	if errors.Is(err, fleetclient.ErrNotFound) {
		return u, errorf("Unit %s does not exist.", name)
	}
	if err != nil {
		return u, fmt.Errorf("error retrieving unit %s: %w", name, err)
	}
	if !isGlobal(u) && u.CurrentState == string(core.Inactive) {
		return u, errorf("Unit %s does not appear to be %s.", name, inactiveMsg)
	}
	return u, nil
}

// checkHere fails unless the unit's machine is this machine: running
// commands on other machines (over SSH) is not supported yet.
func (a *app) checkHere(u api.Unit) error {
	if local := a.localMachineID(); local == "" || local != u.MachineID {
		return errorf("Unit %s runs on machine %s, not this one (%s): running commands on other machines over SSH is not supported yet by this fleetctl",
			u.Name, u.MachineID, orDash(local))
	}
	return nil
}

// onMachine runs a command on the unit's machine, which checkHere has
// found to be this one. The command's exit code becomes fleetctl's.
func (a *app) onMachine(ctx context.Context, name string, args ...string) error {
	code, err := a.execLocal(ctx, name, args...)
	if err != nil {
		return fmt.Errorf("running %s: %w", name, err)
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
