package systemdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultBinary is where Debian and most distributions put the manager.
const DefaultBinary = "/lib/systemd/systemd"

// Options configures one user manager. Every zero field has a default.
type Options struct {
	// Name labels the manager's cgroup and temporary directory (letters,
	// digits, '-' and '_'; default "m").
	Name string
	// MachineID, when set (32 lowercase hex digits), is bind-mounted over
	// /etc/machine-id inside the manager's mount namespace.
	MachineID string
	// Binary is the systemd executable (default DefaultBinary).
	Binary string
	// LogLevel is the manager's log level (default "notice"); its log goes to
	// LogFile, never to the kernel log or a journal.
	LogLevel string
	// ParentDir is where the manager's runtime directory is created (default:
	// /dev/shm when it is a tmpfs, as /run is on a real machine, else the
	// system's temporary directory). Its private socket path must stay under
	// the 108-byte limit of socket addresses.
	ParentDir string
	// Env adds NAME=value pairs to the manager's environment.
	Env []string
	// StartTimeout bounds how long Start waits for the manager to answer on
	// D-Bus (default 10s).
	StartTimeout time.Duration
	// StopTimeout bounds how long Stop lets the manager stop its units before
	// killing what is left in its cgroup (default 5s).
	StopTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = "m"
	}
	for _, r := range o.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return o, fmt.Errorf("systemdtest: name %q: only letters, digits, '-' and '_' are allowed", o.Name)
		}
	}
	if o.MachineID != "" && !isMachineID(o.MachineID) {
		return o, fmt.Errorf("systemdtest: machine ID %q is not 32 lowercase hex digits", o.MachineID)
	}
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if o.ParentDir == "" {
		o.ParentDir = defaultParentDir()
	}
	if o.LogLevel == "" {
		o.LogLevel = "notice"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 5 * time.Second
	}
	return o, nil
}

// tmpfsMagic is the file system type statfs reports for a tmpfs.
const tmpfsMagic = 0x01021994

// defaultParentDir prefers /dev/shm: unit files are written to a tmpfs there,
// as they are to /run on a real machine, instead of to a disk.
func defaultParentDir() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Type == tmpfsMagic && syscall.Access("/dev/shm", 2) == nil {
		return "/dev/shm"
	}
	return os.TempDir()
}

func isMachineID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// launcher moves itself into the manager's cgroups (its arguments), enters a
// private mount namespace with its own tmpfs /run, optionally bind-mounts a
// machine ID, and becomes the manager: every exec keeps the same PID.
const launcher = `set -e
for procs in "$@"; do echo $$ > "$procs"; done
exec unshare --mount --propagation private /bin/sh -ec '
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/system
if [ -n "$FLEET_SDT_MACHINE_ID" ]; then mount --bind "$FLEET_SDT_MACHINE_ID" /etc/machine-id; fi
bin=$FLEET_SDT_BINARY
unset FLEET_SDT_MACHINE_ID FLEET_SDT_BINARY
exec "$bin" --user'
`

// UserManager is one real systemd user manager started by this package, in its
// own mount namespace, cgroup and runtime directory. Its methods are safe for
// concurrent use.
type UserManager struct {
	opts    Options
	dir     string   // XDG_RUNTIME_DIR; everything the manager writes is below it
	cgroups []string // cgroup directories created for it, one per hierarchy
	cgroup  string   // its cgroup path as /proc/PID/cgroup shows it

	mu     sync.Mutex
	proc   *os.Process
	exited chan struct{} // closed when proc has been reaped
	done   bool          // Stop has run
}

// Start starts a user manager and waits until it answers on its private D-Bus
// socket. On error, everything it created is removed again.
func Start(ctx context.Context, opts Options) (*UserManager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.ParentDir, "fleet-sdt-"+opts.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("systemdtest: %w", err)
	}
	um := &UserManager{opts: opts, dir: dir}
	if err := um.prepare(); err != nil {
		return nil, errors.Join(err, um.Stop())
	}
	if err := um.launch(ctx); err != nil {
		return nil, errors.Join(err, um.Stop())
	}
	return um, nil
}

// prepare makes the home, machine ID file and cgroups.
func (um *UserManager) prepare() error {
	if err := os.MkdirAll(um.home(), 0o700); err != nil {
		return fmt.Errorf("systemdtest: %w", err)
	}
	if um.opts.MachineID != "" {
		if err := os.WriteFile(um.machineIDFile(), []byte(um.opts.MachineID+"\n"), 0o444); err != nil {
			return fmt.Errorf("systemdtest: %w", err)
		}
	}
	dirs, path, err := makeCgroups(filepath.Base(um.dir))
	um.cgroups = dirs
	if err != nil {
		return fmt.Errorf("systemdtest: %w", err)
	}
	um.cgroup = path
	return nil
}

// launch starts the manager process and waits until it is ready.
func (um *UserManager) launch(ctx context.Context) error {
	args := []string{"-c", launcher, "launcher"}
	for _, d := range um.cgroups {
		args = append(args, filepath.Join(d, "cgroup.procs"))
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = um.managerEnv()
	cmd.Dir = um.dir
	logf, err := os.OpenFile(um.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("systemdtest: %w", err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies, the manager is told to stop its units and exit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("systemdtest: start manager: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // its exit is reported through exited; the log tells why
		close(exited)
	}()
	um.mu.Lock()
	um.proc, um.exited = cmd.Process, exited
	um.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, um.opts.StartTimeout)
	defer cancel()
	if err := waitReady(rctx, um.Socket(), exited); err != nil {
		return fmt.Errorf("systemdtest: manager %s not ready: %w\n%s", um.opts.Name, err, um.logTail())
	}
	return nil
}

func (um *UserManager) managerEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + um.home(),
		"XDG_RUNTIME_DIR=" + um.dir,
		"XDG_CONFIG_HOME=" + filepath.Join(um.home(), ".config"),
		"XDG_DATA_HOME=" + filepath.Join(um.home(), ".local", "share"),
		"XDG_STATE_HOME=" + filepath.Join(um.home(), ".local", "state"),
		"XDG_CACHE_HOME=" + filepath.Join(um.home(), ".cache"),
		"SYSTEMD_LOG_TARGET=console",
		"SYSTEMD_LOG_LEVEL=" + um.opts.LogLevel,
		"FLEET_SDT_BINARY=" + um.opts.Binary,
	}
	if um.opts.MachineID != "" {
		env = append(env, "FLEET_SDT_MACHINE_ID="+um.machineIDFile())
	}
	return append(env, um.opts.Env...)
}

func (um *UserManager) home() string          { return filepath.Join(um.dir, "home") }
func (um *UserManager) machineIDFile() string { return filepath.Join(um.dir, "machine-id") }

// RuntimeDir is the manager's XDG_RUNTIME_DIR, a fresh directory of its own.
func (um *UserManager) RuntimeDir() string { return um.dir }

// Socket is the manager's private D-Bus socket.
func (um *UserManager) Socket() string { return filepath.Join(um.dir, "systemd", "private") }

// Cgroup is the manager's cgroup as /proc/PID/cgroup shows it, e.g.
// "/fleet-sdt-m-123"; every process it starts is below it.
func (um *UserManager) Cgroup() string { return um.cgroup }

// MachineID is the machine ID the manager sees, or "" for the host's.
func (um *UserManager) MachineID() string { return um.opts.MachineID }

// LogFile is where the manager's own log goes.
func (um *UserManager) LogFile() string { return filepath.Join(um.dir, "manager.log") }

// PID is the manager's process ID, or 0 while it is not running.
func (um *UserManager) PID() int {
	um.mu.Lock()
	defer um.mu.Unlock()
	if um.proc == nil {
		return 0
	}
	select {
	case <-um.exited:
		return 0
	default:
		return um.proc.Pid
	}
}

// Env is the environment for a client of this manager, such as systemctl --user.
func (um *UserManager) Env() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + um.home(),
		"XDG_RUNTIME_DIR=" + um.dir,
	}
}

// Systemctl runs systemctl --user with args against this manager and returns
// its combined output.
func (um *UserManager) Systemctl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--user", "--no-pager"}, args...)...)
	cmd.Env = um.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("systemctl --user %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (um *UserManager) logTail() string {
	data, err := os.ReadFile(um.LogFile())
	if err != nil {
		return "(no manager log: " + err.Error() + ")"
	}
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return "manager log (tail):\n" + string(data)
}
