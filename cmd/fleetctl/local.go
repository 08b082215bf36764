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
	"github.com/fleet-rebuild/fleet/internal/fleetssh"
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

// onMachine runs a command on a machine: here when it is this machine,
// otherwise over SSH to the machine's published IP. The command's
// exit code becomes fleetctl's.
func (a *app) onMachine(ctx context.Context, machine string, sshPort int, name string, args ...string) error {
	if local := a.localMachineID(); local != "" && local == machine {
		code, err := a.execLocal(ctx, name, args...)
		if err != nil {
			return fmt.Errorf("running %s: %w", name, err)
		}
		if code != 0 {
			return exitCode(code)
		}
		return nil
	}
	addr, err := a.machineAddr(ctx, machine, sshPort)
	if err != nil {
		return err
	}
	return a.runRemote(ctx, addr, fleetssh.Quote(append([]string{name}, args...)...), fleetssh.Options{})
}

// unitMachines lists the machines a unit runs on, sorted: its machine, or
// for a global unit every machine that reports it.
func (a *app) unitMachines(ctx context.Context, u api.Unit) ([]string, error) {
	if !isGlobal(u) {
		return []string{u.MachineID}, nil
	}
	states, err := a.client.UnitStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("error retrieving unit states: %w", err)
	}
	var out []string
	for _, s := range states {
		if s.Name == u.Name {
			out = append(out, s.MachineID)
		}
	}
	return out, nil
}
