package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/fleet-rebuild/fleet/daemon/config"
)

// optionsMarker heads the -fleetd-option lines at the end of a machine's
// fleet.conf, so that restart finds them there again.
const optionsMarker = "# fleet-cluster -fleetd-option"

// ownOptions are the fleetd options fleet-cluster writes itself; a
// -fleetd-option may not set them.
var ownOptions = []string{"data_dir", "api_socket", "metadata", "agent_ttl", "embedded_etcd_client_url",
	"embedded_etcd_peer_url", "etcd_servers", "machine_id_file", "systemd_user", "unit_manager"}

// maxFleetdOptions bounds the -fleetd-option flags of one cluster.
const maxFleetdOptions = 64

// fleetdOptions is the repeatable -fleetd-option key=value flag.
type fleetdOptions []string

func (o *fleetdOptions) String() string { return strings.Join(*o, " ") }

func (o *fleetdOptions) Set(v string) error {
	if err := checkFleetdOption(v); err != nil {
		return err
	}
	*o = append(*o, v)
	return nil
}

// checkFleetdOption accepts key=value where key is a fleetd option that
// fleet-cluster does not set itself and value fits on one line of fleet.conf.
func checkFleetdOption(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	switch {
	case !ok:
		return fmt.Errorf("fleetd option %q: want key=value", kv)
	case !slices.Contains(config.Names(), key):
		return fmt.Errorf("fleetd option %q: %q is not a fleetd option (see docs/deploy.md)", kv, key)
	case slices.Contains(ownOptions, key):
		return fmt.Errorf("fleetd option %q: fleet-cluster sets %s itself", kv, key)
	case strings.ContainsAny(value, "\n\r\x00"):
		return fmt.Errorf("fleetd option %s: the value holds a newline or NUL", key)
	case len(kv) > 4096:
		return fmt.Errorf("fleetd option %s: longer than 4096 bytes", key)
	}
	return nil
}

// checkFleetdOptions checks every option and their number.
func checkFleetdOptions(opts []string) error {
	if len(opts) > maxFleetdOptions {
		return fmt.Errorf("fleetd options: %d, more than %d", len(opts), maxFleetdOptions)
	}
	var errs []error
	for _, kv := range opts {
		errs = append(errs, checkFleetdOption(kv))
	}
	return errors.Join(errs...)
}

// withFleetdOptions appends opts, under optionsMarker, to fleet.conf's lines.
func withFleetdOptions(conf, opts []string) []string {
	if len(opts) == 0 {
		return conf
	}
	return append(append(conf, optionsMarker), opts...)
}

// keptFleetdOptions reads back the -fleetd-option lines of the fleet.conf at
// path, as up wrote them, and checks them again.
func keptFleetdOptions(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fleetd options: %w", err)
	}
	defer f.Close()
	var opts []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == optionsMarker:
			in = true
		case in && line != "":
			opts = append(opts, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fleetd options: %s: %w", path, err)
	}
	if err := checkFleetdOptions(opts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return opts, nil
}
