package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var built struct {
	sync.Mutex
	bin string
}

// buildFleetsim builds this command, once for all the tests of the package.
func buildFleetsim(t *testing.T) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if built.bin != "" {
		return built.bin
	}
	dir, err := os.MkdirTemp("", "fleetsim-test-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fleetsim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("go build: %v\n%s", err, out)
	}
	built.bin = bin
	return bin
}

// waitForLine reads r until a line contains want, and returns what it read.
func waitForLine(t *testing.T, r *bufio.Reader, want string) string {
	t.Helper()
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		b.WriteString(l)
		if strings.Contains(l, want) {
			return b.String()
		}
		if err != nil {
			t.Fatalf("no line with %q before %v; read:\n%s", want, err, b.String())
		}
	}
}

// interrupt sends SIGINT to the process, reads the rest of r (its piped
// output) and returns it with the exit status.
func interrupt(t *testing.T, cmd *exec.Cmd, r io.Reader) (string, int) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, rerr := io.ReadAll(r)
	if rerr != nil {
		t.Error(rerr)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return string(rest), cmd.ProcessState.ExitCode()
}

// TestInterruptedRun: SIGINT in the middle of a long scenario on etcd prints
// the report so far, exits 130 and leaves no etcd directory behind.
func TestInterruptedRun(t *testing.T) {
	bin := buildFleetsim(t)
	var b strings.Builder
	b.WriteString("cluster seed=3\n----\n\n")
	for _, m := range []string{"m1 engine", "m2 engine", "m3", "m4", "m5", "m6"} {
		b.WriteString("add-machine " + m + "\n----\n\n")
	}
	b.WriteString("list-machines\n----\n\n")
	for range 20 {
		b.WriteString("run 24h\n----\n\n")
	}
	file := writeScenario(t, b.String())
	tmp := t.TempDir()
	cmd := exec.Command(bin, "run", "--backend", "etcd", file)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	out := waitForLine(t, r, "MACHINE  METADATA")
	rest, code := interrupt(t, cmd, r)
	out += rest
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, errOut.String())
	}
	if !strings.Contains(out, ": interrupted: ") || !strings.Contains(errOut.String(), "run interrupted") {
		t.Errorf("no report of the interrupted run:\n%s\nstderr:\n%s", out, errOut.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the embedded etcd left %s in TMPDIR", left[0].Name())
	}
}

// TestInterruptedGen: SIGINT during a long generated run prints the report so
// far, exits 130 and leaves a trace file of whole lines.
func TestInterruptedGen(t *testing.T) {
	bin := buildFleetsim(t)
	trace := filepath.Join(t.TempDir(), "trace.txt")
	cmd := exec.Command(bin, "gen", "--machines", "100", "--units", "1000", "--faults", "heavy", "--duration", "24h", "--seed", "5", "--trace", trace)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stderr)
	waitForLine(t, r, "fleetsim gen: seed 5")
	rest, code := interrupt(t, cmd, r)
	if code != exitInterrupted || !strings.Contains(rest, "interrupted during") {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, rest)
	}
	if !strings.HasPrefix(out.String(), "seed 5\n") || !strings.Contains(out.String(), "invariants:") {
		t.Errorf("no report so far:\n%s", out.String())
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# seed 5\n") || !strings.HasSuffix(string(data), "\n") {
		t.Errorf("trace not closed cleanly: %d bytes, ends %q", len(data), data[max(0, len(data)-80):])
	}
}
