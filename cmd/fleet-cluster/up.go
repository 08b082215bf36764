package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/internal/clusterstate"
)

// Unit manager choices of upOptions.UnitManager.
const (
	managerAuto    = "auto"
	managerSystemd = "systemd"
	managerFake    = "fake"
)

// upOptions configures one cluster.
type upOptions struct {
	Dir         string        // the cluster's directory: state, machines, logs
	Machines    int           // how many machines
	Etcd        int           // 0: etcd embedded in the first fleetd; N: a separate N-member etcd
	Fleetd      string        // the fleetd binary
	Fleetctl    string        // the fleetctl binary: starts the examples, and printed for the user
	Self        string        // this program's binary, run as the etcd members
	Examples    string        // the example units' directory
	Instances   int           // instances started of each template
	UnitManager string        // managerAuto, managerSystemd or managerFake
	Systemd     string        // the systemd binary
	AgentTTL    string        // fleetd's agent_ttl
	Wait        time.Duration // bound of each wait (machines ready, units running)
	Netns       bool          // each machine in its own network namespace, etcd in a hub (needs Etcd > 0)
	ClockAhead  time.Duration // restart: fleetd in a time namespace whose monotonic and boot-time clocks are this far ahead
	// FleetdOptions are more key=value lines of every machine's fleet.conf
	// (-fleetd-option), kept there for restart.
	FleetdOptions []string
	Out           io.Writer // where the tables and the export line go
}

// cluster is a cluster being started.
type cluster struct {
	opts  upOptions
	state *clusterstate.State
	// embeddedPeer is the peer URL the embedded etcd serves again after a
	// restart; empty: a free port.
	embeddedPeer string
}

// errUnitsPending is returned when the cluster runs but not every example
// unit does (yet): the cluster is left up for the user to look at.
var errUnitsPending = errors.New("not every example unit runs yet")

// up starts a cluster. A failure before every machine is listed stops and
// removes whatever had started; a failure after that leaves the cluster up.
func up(ctx context.Context, opts upOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, clusterstate.File)); err == nil {
		return fmt.Errorf("a cluster is already recorded in %s: run make cluster-down (fleet-cluster down -dir %s) first", opts.Dir, opts.Dir)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	c := &cluster{opts: opts, state: &clusterstate.State{Dir: opts.Dir, Fleetctl: opts.Fleetctl}}
	if err := c.start(ctx); err != nil {
		return errors.Join(err, down(opts.Dir, io.Discard))
	}
	return c.runExamples(ctx)
}

func (o *upOptions) validate() error {
	switch {
	case o.Machines < 1:
		return fmt.Errorf("machines: %d, want at least 1", o.Machines)
	case o.Etcd < 0 || o.Etcd%2 == 0 && o.Etcd != 0:
		return fmt.Errorf("etcd: %d members, want 0 (embedded) or an odd number", o.Etcd)
	case o.Fleetd == "":
		return errors.New("fleetd: no binary given")
	case o.Fleetctl == "":
		return errors.New("fleetctl: no binary given")
	case o.Etcd > 0 && o.Self == "":
		return errors.New("no binary to run the etcd members with")
	case o.Netns && o.Etcd == 0:
		return errors.New("netns: needs a separate etcd (-etcd 1 or more) for the hub namespace")
	case o.Netns && os.Geteuid() != 0:
		return errors.New("netns: network namespaces need root")
	}
	if err := checkFleetdOptions(o.FleetdOptions); err != nil {
		return err
	}
	switch o.UnitManager {
	case managerAuto, managerSystemd, managerFake:
	default:
		return fmt.Errorf("unit manager %q: want auto, systemd or fake", o.UnitManager)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	o.Dir = dir
	// The longest socket path, a manager's private bus, must fit in 108 bytes.
	if n := len(filepath.Join(dir, "m00", "run", "systemd", "private")); n > 107 {
		return fmt.Errorf("cluster directory %s: too long for socket paths (%d bytes)", dir, n)
	}
	return nil
}

// start chooses the unit manager and starts etcd and the machines, waiting
// until every machine is listed.
func (c *cluster) start(ctx context.Context) error {
	if err := c.chooseManager(); err != nil {
		return err
	}
	if err := c.state.Save(); err != nil {
		return err
	}
	if c.opts.Netns {
		if _, err := exec.LookPath("ip"); err != nil {
			return fmt.Errorf("netns: %w", err)
		}
		if err := c.makeHub(); err != nil {
			return err
		}
	}
	if c.opts.Etcd > 0 {
		if err := c.startEtcd(ctx); err != nil {
			return err
		}
	}
	if err := c.startMachines(ctx); err != nil {
		return err
	}
	cl, err := newClient(c.endpoint())
	if err != nil {
		return err
	}
	defer cl.Close()
	return waitFor(ctx, c.opts.Wait, "every machine listed", c.state.Procs, func() error {
		ms, err := cl.Machines(ctx)
		if err == nil && len(ms) != c.opts.Machines {
			err = fmt.Errorf("%d of %d machines listed", len(ms), c.opts.Machines)
		}
		return err
	})
}

// chooseManager decides between real systemd and the fake unit manager and
// says why when it falls back.
func (c *cluster) chooseManager() error {
	s := c.state
	if c.opts.UnitManager == managerFake {
		s.UnitManager, s.Why = managerFake, "asked for"
		return nil
	}
	roots, err := cgroupRoots(c.opts.Dir)
	if err == nil {
		err = systemdReason(c.opts.Systemd, roots)
	}
	if err != nil {
		if c.opts.UnitManager == managerSystemd {
			return fmt.Errorf("real systemd cannot run here: %w", err)
		}
		s.UnitManager, s.Why = managerFake, err.Error()
		fmt.Fprintf(c.opts.Out, "Real systemd cannot run here (%v): the machines use fleetd's fake unit manager, nothing really runs.\n", err)
		return nil
	}
	s.UnitManager, s.Cgroups = managerSystemd, roots
	return nil
}

// endpoint is the first machine's API, which the tool and the user talk to.
func (c *cluster) endpoint() string { return "unix://" + c.state.Machines[0].Socket }

// startMachines starts every machine: its manager, then its fleetd. With an
// embedded etcd the first fleetd must serve before the others start.
func (c *cluster) startMachines(ctx context.Context) error {
	for i := range c.opts.Machines {
		m, err := c.newMachine(i + 1)
		if err != nil {
			return err
		}
		if c.opts.Netns {
			if err := c.joinHub(&m, i+1); err != nil {
				return err
			}
		}
		c.state.Machines = append(c.state.Machines, m)
	}
	if c.opts.Etcd == 0 {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.state.EtcdURLs = []string{port}
		c.state.Machines[0].EtcdHost = true
	}
	if err := c.state.Save(); err != nil {
		return err
	}
	managers := map[string]clusterstate.Proc{}
	if c.state.UnitManager == managerSystemd {
		for _, m := range c.state.Machines {
			p, err := c.startManager(ctx, m)
			if err != nil {
				return err
			}
			managers[m.Name] = p
		}
	}
	first := 0
	if c.opts.Etcd == 0 {
		if err := c.startFleetd(ctx, c.state.Machines[0], managers); err != nil {
			return err
		}
		first = 1
	}
	for _, m := range c.state.Machines[first:] {
		if err := c.startFleetd(ctx, m, managers); err != nil {
			return err
		}
	}
	return nil
}

// newMachine makes machine n's directory, ID and configuration.
func (c *cluster) newMachine(n int) (clusterstate.Machine, error) {
	name := fmt.Sprintf("m%d", n)
	dir := filepath.Join(c.opts.Dir, name)
	m := clusterstate.Machine{Name: name, Dir: dir, Socket: filepath.Join(dir, "fleet.sock"), FleetdLog: filepath.Join(dir, "fleetd.log")}
	if c.state.UnitManager == managerSystemd {
		m.Runtime = filepath.Join(dir, "run")
	}
	for _, d := range []string{dir, filepath.Join(dir, "home"), filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return m, fmt.Errorf("machine %s: %w", name, err)
		}
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return m, fmt.Errorf("machine %s: %w", name, err)
	}
	m.ID = hex.EncodeToString(id)
	if err := os.WriteFile(filepath.Join(dir, "machine-id"), []byte(m.ID+"\n"), 0o444); err != nil {
		return m, fmt.Errorf("machine %s: %w", name, err)
	}
	return m, nil
}

// startManager starts machine m's systemd user manager in its own mount
// namespace and cgroup, and waits until it answers on D-Bus.
func (c *cluster) startManager(ctx context.Context, m clusterstate.Machine) (clusterstate.Proc, error) {
	home := filepath.Join(m.Dir, "home")
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + home,
		"XDG_RUNTIME_DIR=" + m.Runtime,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"SYSTEMD_LOG_TARGET=console",
		"SYSTEMD_LOG_LEVEL=notice",
		"FLEET_CLUSTER_MACHINE_ID=" + filepath.Join(m.Dir, "machine-id"),
	}
	args, err := c.launcherArgs(&env, m.Name+"/manager", managerLauncher, c.opts.Systemd)
	if err != nil {
		return clusterstate.Proc{}, err
	}
	p, err := c.spawn("manager", m.Name, filepath.Join(m.Dir, "manager.log"), env, inNetns(m.Netns, args)...)
	if err != nil {
		return p, err
	}
	socket := filepath.Join(m.Runtime, "systemd", "private")
	err = waitFor(ctx, c.opts.Wait, "systemd manager of "+m.Name, []clusterstate.Proc{p}, func() error { return pingManager(ctx, socket) })
	return p, err
}

// startFleetd writes machine m's fleet.conf, starts its fleetd (in the
// manager's mount namespace and beside it in the machine's cgroup) and waits
// until it is healthy.
func (c *cluster) startFleetd(ctx context.Context, m clusterstate.Machine, managers map[string]clusterstate.Proc) error {
	conf := []string{
		"data_dir=" + filepath.Join(m.Dir, "data"),
		"api_socket=" + m.Socket,
		"metadata=name=" + m.Name,
	}
	if c.opts.AgentTTL != "" {
		conf = append(conf, "agent_ttl="+c.opts.AgentTTL)
	}
	if m.EtcdHost {
		peer := c.embeddedPeer
		if peer == "" {
			var err error
			if peer, err = freePort(); err != nil {
				return err
			}
		}
		conf = append(conf, "embedded_etcd_client_url="+c.state.EtcdURLs[0], "embedded_etcd_peer_url="+peer)
	} else {
		conf = append(conf, "etcd_servers="+strings.Join(c.state.EtcdURLs, ","))
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=" + filepath.Join(m.Dir, "home")}
	var args []string
	var err error
	confFile := filepath.Join(m.Dir, "fleet.conf")
	fleetd := []string{c.opts.Fleetd, "-config", confFile}
	if c.opts.ClockAhead > 0 {
		// unshare enters the new time namespace itself and execs fleetd: the
		// PID recorded stays fleetd's.
		ahead := strconv.FormatInt(int64(c.opts.ClockAhead/time.Second), 10)
		fleetd = append([]string{"unshare", "--time", "--monotonic", ahead, "--boottime", ahead}, fleetd...)
	}
	if mgr, ok := managers[m.Name]; ok {
		conf = append(conf, "machine_id_file=/etc/machine-id", "systemd_user=true")
		env = append(env, "XDG_RUNTIME_DIR="+m.Runtime)
		args, err = c.launcherArgs(&env, m.Name+"/fleetd", nsLauncher, append([]string{fmt.Sprint(mgr.PID)}, fleetd...)...)
	} else {
		conf = append(conf, "machine_id_file="+filepath.Join(m.Dir, "machine-id"), "unit_manager=fake")
		args, err = c.launcherArgs(&env, m.Name+"/fleetd", plainLauncher, fleetd...)
	}
	if err != nil {
		return err
	}
	conf = withFleetdOptions(conf, c.opts.FleetdOptions)
	if err := os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	p, err := c.spawn("fleetd", m.Name, m.FleetdLog, env, inNetns(m.Netns, args)...)
	if err != nil {
		return err
	}
	return waitFor(ctx, c.opts.Wait, "fleetd of "+m.Name, []clusterstate.Proc{p}, func() error { return healthy(ctx, "", "unix://"+m.Socket) })
}

// runExamples starts the example units, waits until they run and prints the
// machines, the units and how to reach the cluster.
func (c *cluster) runExamples(ctx context.Context) error {
	units, err := readExamples(c.opts.Examples, c.opts.Instances)
	if err != nil {
		return err
	}
	cl, err := newClient(c.endpoint())
	if err != nil {
		return err
	}
	defer cl.Close()
	start := []string{"start", "--no-block"}
	for _, u := range units {
		start = append(start, u.Path)
	}
	if err := fleetctl(ctx, c.opts.Fleetctl, c.endpoint(), c.opts.Out, start...); err != nil {
		return err
	}
	var pending []string
	waitErr := waitFor(ctx, c.opts.Wait, "example units running", c.state.Procs, func() error {
		pending, err = notRunning(ctx, cl, units, c.opts.Machines)
		if err == nil && len(pending) > 0 {
			err = fmt.Errorf("%d units not running yet", len(pending))
		}
		return err
	})
	out := c.opts.Out
	fmt.Fprintf(out, "\n%d machines (%s unit manager), etcd %s:\n\n", c.opts.Machines, c.state.UnitManager, c.etcdKind())
	if err := fleetctl(ctx, c.opts.Fleetctl, c.endpoint(), out, "list-machines"); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if err := fleetctl(ctx, c.opts.Fleetctl, c.endpoint(), out, "list-units"); err != nil {
		return err
	}
	c.printAccess()
	if waitErr != nil {
		return fmt.Errorf("%w: %s (%v); the cluster stays up, see the logs under %s", errUnitsPending, strings.Join(pending, " "), waitErr, c.opts.Dir)
	}
	return nil
}

func (c *cluster) etcdKind() string {
	if c.opts.Etcd == 0 {
		return "embedded in " + c.state.Machines[0].Name + "'s fleetd at " + c.state.EtcdURLs[0]
	}
	return fmt.Sprintf("%d separate members at %s", c.opts.Etcd, strings.Join(c.state.EtcdURLs, ","))
}

// printAccess tells the user how to reach the cluster.
func (c *cluster) printAccess() {
	out := c.opts.Out
	fmt.Fprintln(out)
	fmt.Fprintf(out, "export FLEETCTL_ENDPOINT=%s\n", c.endpoint())
	fmt.Fprintf(out, "fleetctl: %s\n", c.opts.Fleetctl)
	if c.state.UnitManager == managerSystemd {
		fmt.Fprintf(out, "a machine's systemd: XDG_RUNTIME_DIR=%s systemctl --user status\n", c.state.Machines[0].Runtime)
	}
	fmt.Fprintf(out, "logs and state: %s; stop everything: make cluster-down\n", c.opts.Dir)
}
