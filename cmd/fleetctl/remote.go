package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/internal/fleetssh"
)

// sshConfig is the SSH configuration the global flags describe; tunnel
// false leaves --tunnel out (the connection to the tunnel host itself).
func (a *app) sshConfig(tunnel bool) fleetssh.Config {
	g := a.global
	cfg := fleetssh.Config{
		User:        g.sshUsername,
		Timeout:     time.Duration(g.sshTimeout * float64(time.Second)),
		AgentSocket: a.getenv("SSH_AUTH_SOCK"),
	}
	if tunnel {
		cfg.Tunnel = g.tunnel
	}
	if g.strictHostKeys {
		cfg.HostKeys = &fleetssh.KnownHosts{File: a.expandHome(g.knownHostsFile), Prompt: a.stderr, Answer: a.answers()}
	}
	return cfg
}

// answers reads the user's answers to host-key prompts, once per
// invocation.
func (a *app) answers() *bufio.Reader {
	if a.stdinLines == nil {
		a.stdinLines = bufio.NewReader(a.stdin)
	}
	return a.stdinLines
}

// expandHome replaces a leading "~" with $HOME.
func (a *app) expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		return filepath.Join(a.getenv("HOME"), strings.TrimPrefix(p, "~"))
	}
	return p
}

// machineAddr is the SSH address of a machine: its published IP and port.
func (a *app) machineAddr(ctx context.Context, id string, port int) (string, error) {
	ms, err := a.machineList(ctx, a.client)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.ID == id {
			if m.PrimaryIP == "" {
				return "", fmt.Errorf("machine %s publishes no IP address to connect to", id)
			}
			return fleetssh.WithPort(m.PrimaryIP, port), nil
		}
	}
	return "", fmt.Errorf("machine %s is not in the cluster", id)
}

// runRemote runs command on the machine at addr over SSH with fleetctl's
// streams; the remote exit status becomes fleetctl's.
func (a *app) runRemote(ctx context.Context, addr, command string, opts fleetssh.Options) error {
	if a.global.sshTimeout <= 0 {
		return fmt.Errorf("--ssh-timeout %v: must be a positive number of seconds", a.global.sshTimeout)
	}
	c, err := fleetssh.Dial(ctx, a.sshConfig(true), addr)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("Unable to establish SSH connection: %w", err)}
	}
	defer c.Close()
	code, err := c.Run(command, opts, a.stdin, a.stdout, a.stderr)
	if err != nil {
		return &exitError{code: code, err: err}
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// sshPortFlag checks an --ssh-port value.
func sshPortFlag(port int) error {
	if port < 1 || port > 65535 {
		return errors.New("--ssh-port " + strconv.Itoa(port) + ": want 1 to 65535")
	}
	return nil
}
