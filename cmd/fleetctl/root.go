package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
	"github.com/fleet-rebuild/fleet/internal/version"
)

// globalOptions are fleet's persistent flags (spec §2.1).
type globalOptions struct {
	endpoint        string
	driver          string
	etcdKeyPrefix   string
	requestTimeout  float64
	caFile          string
	certFile        string
	keyFile         string
	etcdAuth        etcdAuthOptions
	tunnel          string
	sshUsername     string
	sshTimeout      float64
	strictHostKeys  bool
	knownHostsFile  string
	debug           bool
	experimentalAPI bool
}

const (
	defaultEndpoint     = "unix:///var/run/fleet.sock"
	defaultEtcdEndpoint = "http://127.0.0.1:2379,http://127.0.0.1:4001"
	envPrefix           = "FLEETCTL_"
)

// enablePrefixMatching sets cobra's process-wide prefix matching once, so
// apps run concurrently (tests) do not race on it.
var enablePrefixMatching sync.Once

// newRootCmd builds the command tree, one constructor per command.
func (a *app) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fleetctl",
		Short:         "fleetctl is a command-line interface to fleet, the cluster-wide systemd scheduling system.",
		Version:       version.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	enablePrefixMatching.Do(func() { cobra.EnablePrefixMatching = true })
	root.SetVersionTemplate("fleetctl version {{.Version}}\n")
	g := &a.global
	fs := root.PersistentFlags()
	fs.StringVar(&g.endpoint, "endpoint", defaultEndpoint, "Location of the fleet API if --driver=API. Alternatively, if --driver=etcd, location of the etcd API.")
	fs.StringVar(&g.driver, "driver", "API", "Adapter used to execute fleetctl commands. Options include \"API\" and \"etcd\".")
	fs.StringVar(&g.etcdKeyPrefix, "etcd-key-prefix", etcd.DefaultPrefix, "Keyspace for fleet data in etcd (development use only!)")
	fs.Float64Var(&g.requestTimeout, "request-timeout", 3.0, "Amount of time in seconds to allow a single request before considering it failed.")
	fs.StringVar(&g.caFile, "ca-file", "", "Location of TLS CA file.")
	fs.StringVar(&g.certFile, "cert-file", "", "Location of TLS cert file.")
	fs.StringVar(&g.keyFile, "key-file", "", "Location of TLS key file.")
	fs.StringVar(&g.caFile, "etcd-cafile", "", "")
	fs.StringVar(&g.certFile, "etcd-certfile", "", "")
	fs.StringVar(&g.keyFile, "etcd-keyfile", "", "")
	for old, cur := range map[string]string{"etcd-cafile": "ca-file", "etcd-certfile": "cert-file", "etcd-keyfile": "key-file"} {
		_ = fs.MarkDeprecated(old, "use --"+cur+" instead")
	}
	g.etcdAuth.addFlags(fs)
	fs.StringVar(&g.tunnel, "tunnel", "", "Establish an SSH tunnel through the provided address for communication with fleet and etcd.")
	fs.StringVar(&g.sshUsername, "ssh-username", "core", "Username to use when connecting to CoreOS instance.")
	fs.Float64Var(&g.sshTimeout, "ssh-timeout", 10.0, "Amount of time in seconds to allow for SSH connection initialization before failing.")
	fs.BoolVar(&g.strictHostKeys, "strict-host-key-checking", true, "Verify host keys presented by remote machines before initiating SSH connections.")
	fs.StringVar(&g.knownHostsFile, "known-hosts-file", "~/.fleetctl/known_hosts", "File used to store remote machine fingerprints. Ignored if strict host key checking is disabled.")
	fs.BoolVar(&g.debug, "debug", false, "Print out more debug information to stderr.")
	fs.BoolVar(&g.experimentalAPI, "experimental-api", true, "Use experimental HTTP API.")
	_ = fs.MarkDeprecated("experimental-api", "the API is always used unless --driver=etcd")
	root.AddCommand(
		a.newSubmitCmd(), a.newLoadCmd(), a.newStartCmd(), a.newStopCmd(),
		a.newUnloadCmd(), a.newDestroyCmd(), a.newRestartCmd(), a.newCatCmd(),
		a.newListUnitsCmd(), a.newListUnitFilesCmd(), a.newListMachinesCmd(),
		a.newStatusCmd(), a.newJournalCmd(), a.newVersionCmd(),
		a.newSSHCmd(), a.newVerifyCmd(), a.newFdForwardCmd(), a.newManCmd(),
	)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nRun '%s --help' for usage.", err, cmd.CommandPath())
	})
	return root
}

// applyEnv sets every persistent flag from FLEETCTL_<FLAG> (uppercased, '-'
// as '_') before the command line is parsed, so explicit flags win.
func (a *app) applyEnv(root *cobra.Command) error {
	var errs []error
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := a.getenv(name)
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("invalid value %q of %s: %w", v, name, err))
		}
	})
	return errors.Join(errs...)
}

// clientFor opens the driver's client once per invocation.
func (a *app) clientFor(ctx context.Context, cmd *cobra.Command) (fleetclient.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	c, err := a.openClient(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("Unable to initialize client: %w", err)
	}
	a.client = c
	return c, nil
}

func (a *app) openClient(ctx context.Context, cmd *cobra.Command) (fleetclient.Client, error) {
	g := a.global
	if g.requestTimeout <= 0 {
		return nil, fmt.Errorf("--request-timeout %v: must be a positive number of seconds", g.requestTimeout)
	}
	if g.tunnel != "" {
		t, err := a.openTunnel(ctx)
		if err != nil {
			return nil, err
		}
		a.tunnel = t
	}
	timeout := time.Duration(g.requestTimeout * float64(time.Second))
	if g.debug {
		fmt.Fprintf(a.stderr, "DEBUG: driver %s, endpoint %s, request timeout %v\n", g.driver, g.endpoint, timeout)
	}
	switch strings.ToLower(g.driver) {
	case "api":
		if !strings.Contains(g.endpoint, "://") {
			return nil, fmt.Errorf("endpoint %q: URL scheme undefined", g.endpoint)
		}
		tlsConf, err := clientTLS(g)
		if err != nil {
			return nil, err
		}
		first, rest, more := strings.Cut(g.endpoint, ",")
		if more && rest != "" {
			fmt.Fprintf(a.stderr, "WARNING: --endpoint names several APIs; only the first, %s, is used\n", first)
		}
		if tlsConf != nil && !strings.HasPrefix(strings.ToLower(first), "https://") {
			fmt.Fprintf(a.stderr, "WARNING: --ca-file, --cert-file and --key-file apply to an https:// endpoint only, not to %s\n", first)
		}
		endpoint := g.endpoint
		if a.tunnel != nil {
			var serverName string
			if endpoint, serverName, err = a.tunnel.apiEndpoint(endpoint); err != nil {
				return nil, err
			}
			if serverName != "" {
				if tlsConf == nil {
					tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
				}
				tlsConf.ServerName = serverName
			}
		}
		return fleetclient.NewAPI(api.ClientConfig{Endpoint: endpoint, TLS: tlsConf, Timeout: timeout})
	case "etcd":
		endpoint := g.endpoint
		if !cmd.Flags().Changed("endpoint") && a.getenv(envPrefix+"ENDPOINT") == "" {
			endpoint = defaultEtcdEndpoint
		}
		var eps []string
		for _, ep := range strings.Split(endpoint, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				eps = append(eps, ep)
			}
		}
		for _, ep := range eps {
			if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
				return nil, fmt.Errorf("etcd endpoint %q: want an http:// or https:// URL", ep)
			}
		}
		// The etcd backend reads the files itself; checking them here
		// names a bad one instead of failing later as "no endpoint answers".
		if _, err := clientTLS(g); err != nil {
			return nil, err
		}
		user, password, err := g.etcdAuth.credentials(a.getenv)
		if err != nil {
			return nil, err
		}
		cc := etcd.ClientConfig{Endpoints: eps, CAFile: g.caFile, CertFile: g.certFile, KeyFile: g.keyFile, Username: user, Password: password}
		if a.tunnel != nil {
			cc.Dialer = a.tunnel.dialer
		}
		return fleetclient.NewEtcd(ctx, fleetclient.EtcdConfig{
			Client:         cc,
			Prefix:         g.etcdKeyPrefix,
			RequestTimeout: timeout,
		})
	}
	return nil, fmt.Errorf("unknown driver %q: want API or etcd", g.driver)
}

// clientTLS builds the API client's TLS configuration from --ca-file,
// --cert-file and --key-file; nil when none is set.
func clientTLS(g globalOptions) (*tls.Config, error) {
	if g.caFile == "" && g.certFile == "" && g.keyFile == "" {
		return nil, nil
	}
	if (g.certFile == "") != (g.keyFile == "") {
		return nil, errors.New("--cert-file and --key-file must be given together")
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if g.caFile != "" {
		pem, err := os.ReadFile(g.caFile)
		if err != nil {
			return nil, fmt.Errorf("reading --ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", g.caFile)
		}
		conf.RootCAs = pool
	}
	if g.certFile != "" {
		cert, err := tls.LoadX509KeyPair(g.certFile, g.keyFile)
		if err != nil {
			return nil, fmt.Errorf("loading --cert-file/--key-file: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
