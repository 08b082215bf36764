package fleetssh_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rebuild/fleet/internal/fleetssh"
	"github.com/fleet-rebuild/fleet/internal/fleetssh/sshtest"
)

// echo answers every command with its text and exits 7 for "fail".
func echo(cmd string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "ran %s\n", cmd)
	if strings.Contains(cmd, "fail") {
		return 7
	}
	return 0
}

func config(ag *sshtest.Agent, kh *fleetssh.KnownHosts) fleetssh.Config {
	return fleetssh.Config{User: "core", Timeout: 5 * time.Second, AgentSocket: ag.Socket, HostKeys: kh}
}

func knownHosts(t *testing.T, answer string) (*fleetssh.KnownHosts, *bytes.Buffer) {
	var prompt bytes.Buffer
	return &fleetssh.KnownHosts{
		File:   filepath.Join(t.TempDir(), "dir", "known_hosts"),
		Prompt: &prompt,
		Answer: bufio.NewReader(strings.NewReader(answer)),
	}, &prompt
}

func run(t *testing.T, cfg fleetssh.Config, addr, cmd string) (int, string, error) {
	t.Helper()
	c, err := fleetssh.Dial(context.Background(), cfg, addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	var out bytes.Buffer
	code, err := c.Run(cmd, fleetssh.Options{}, strings.NewReader(""), &out, io.Discard)
	return code, out.String(), err
}

// TestKnownHosts: an unknown host is asked about once and remembered on
// "yes"; "no" refuses it and remembers nothing; a changed key is refused
// with OpenSSH's warning.
func TestKnownHosts(t *testing.T) {
	ag := sshtest.NewAgent(t)
	srv := sshtest.NewServer(t, ag.Key, echo)

	kh, prompt := knownHosts(t, "no\n")
	if _, _, err := run(t, config(ag, kh), srv.Addr, "true"); !errors.Is(err, fleetssh.ErrHostKeyRejected) {
		t.Fatalf("declined: %v", err)
	}
	if !strings.Contains(prompt.String(), "Are you sure you want to continue connecting (yes/no)?") {
		t.Fatalf("no prompt: %q", prompt.String())
	}
	if _, err := os.Stat(kh.File); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("declined key was stored: %v", err)
	}

	kh.Answer = bufio.NewReader(strings.NewReader("yes\n"))
	prompt.Reset()
	if code, out, err := run(t, config(ag, kh), srv.Addr, "true"); err != nil || code != 0 || out != "ran true\n" {
		t.Fatalf("accepted: %d %q %v", code, out, err)
	}
	if !strings.Contains(prompt.String(), "Permanently added") {
		t.Fatalf("prompt %q", prompt.String())
	}
	prompt.Reset()
	kh.Answer = bufio.NewReader(strings.NewReader(""))
	if code, _, err := run(t, config(ag, kh), srv.Addr, "fail"); err != nil || code != 7 {
		t.Fatalf("known host: exit %d, %v", code, err)
	}
	if prompt.Len() != 0 {
		t.Fatalf("asked again: %q", prompt.String())
	}

	other := sshtest.NewServer(t, ag.Key, echo)
	data, err := os.ReadFile(kh.File)
	if err != nil {
		t.Fatal(err)
	}
	// The same address now presents another key.
	swapped := strings.Replace(string(data), hostPart(srv.Addr), hostPart(other.Addr), 1)
	if err := os.WriteFile(kh.File, []byte(swapped), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, config(ag, kh), other.Addr, "true")
	if !errors.Is(err, fleetssh.ErrHostKeyRejected) || !strings.Contains(prompt.String(), "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("changed key: %v, %q", err, prompt.String())
	}
	if len(other.Commands()) != 0 {
		t.Fatalf("a command ran on a host with a changed key: %v", other.Commands())
	}
}

// hostPart is the known-hosts form of addr.
func hostPart(addr string) string {
	host, port, _ := strings.Cut(addr, ":")
	return "[" + host + "]:" + port
}

// TestTunnel: a command reaches the target through the jump host.
func TestTunnel(t *testing.T) {
	ag := sshtest.NewAgent(t)
	jump := sshtest.NewServer(t, ag.Key, echo)
	target := sshtest.NewServer(t, ag.Key, echo)
	cfg := config(ag, nil)
	cfg.Tunnel = jump.Addr
	code, out, err := run(t, cfg, target.Addr, fleetssh.Quote("systemctl", "status", "a b"))
	if err != nil || code != 0 || out != "ran \"systemctl\" \"status\" \"a b\"\n" {
		t.Fatalf("exit %d, out %q, %v", code, out, err)
	}
	if f := jump.Forwards(); len(f) != 1 || f[0] != target.Addr {
		t.Fatalf("jump forwards %v", f)
	}
	if len(jump.Commands()) != 0 || len(target.Commands()) != 1 {
		t.Fatalf("commands: jump %v, target %v", jump.Commands(), target.Commands())
	}
}

// TestNoAgent: without SSH_AUTH_SOCK the error says what to do.
func TestNoAgent(t *testing.T) {
	_, err := fleetssh.Dial(context.Background(), fleetssh.Config{User: "core"}, "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Fatalf("%v", err)
	}
}
