package main

import (
	"strings"
	"testing"
)

// TestEnvironment: every global flag has its FLEETCTL_* form, applied before
// the command line so explicit flags win; a bad value is an error.
func TestEnvironment(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{map[string]string{"FLEETCTL_DRIVER": "bogus"}, []string{"list-units"}, 1, `unknown driver "bogus"`},
		{map[string]string{"FLEETCTL_DRIVER": "bogus"}, []string{"--driver=API", "--endpoint=ftp://x/", "list-units"}, 1, `unsupported scheme "ftp"`},
		{map[string]string{"FLEETCTL_ENDPOINT": "noscheme"}, []string{"list-units"}, 1, "URL scheme undefined"},
		{map[string]string{"FLEETCTL_REQUEST_TIMEOUT": "soon"}, []string{"list-units"}, 1, `invalid value "soon" of FLEETCTL_REQUEST_TIMEOUT`},
		{map[string]string{"FLEETCTL_STRICT_HOST_KEY_CHECKING": "maybe"}, []string{"version"}, 1, "FLEETCTL_STRICT_HOST_KEY_CHECKING"},
		{map[string]string{"FLEETCTL_TUNNEL": "host"}, []string{"list-units"}, 1, "--tunnel is not supported yet"},
		{map[string]string{"FLEETCTL_SSH_USERNAME": "me", "FLEETCTL_DEBUG": "true"}, []string{"version"}, 0, "fleetctl version"},
	}
	for _, c := range cases {
		r := fleetctl(t, c.env, "", c.args...)
		if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.want) {
			t.Errorf("%v %v: exit %d, output %q; want exit %d and %q", c.env, c.args, r.code, r.stdout+r.stderr, c.code, c.want)
		}
	}
}

// TestHelp: bare fleetctl, help and --help print usage and exit 0; help
// lists every command; completion scripts are generated.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"--help"}, {"-h"}} {
		r := fleetctl(t, nil, "", args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		for _, cmd := range []string{"submit", "load", "start", "stop", "unload", "destroy", "restart", "cat",
			"list-units", "list-unit-files", "list-machines", "status", "journal", "version", "completion"} {
			if !strings.Contains(r.stdout, "  "+cmd+" ") {
				t.Errorf("%v: help does not list %s:\n%s", args, cmd, r.stdout)
			}
		}
	}
	r := fleetctl(t, nil, "", "help", "list-units")
	if r.code != 0 || !strings.Contains(r.stdout, "-l, --full") || !strings.Contains(r.stdout, "--endpoint") {
		t.Errorf("help list-units: exit %d:\n%s", r.code, r.stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := fleetctl(t, nil, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "fleetctl") {
			t.Errorf("completion %s: exit %d: %s", shell, r.code, r.stderr)
		}
	}
}
