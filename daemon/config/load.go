package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// DefaultFile is read when no file is named and it exists.
const DefaultFile = "/etc/fleet/fleet.conf"

// Sources are where options come from, in increasing precedence.
type Sources struct {
	// File is the configuration file named on the command line; it must exist.
	// Empty: DefaultFile if it exists, else none.
	File string
	// Env is the environment (os.Environ()); FLEET_<OPTION> variables with a
	// non-empty value override the file.
	Env []string
	// Flags are option values given on the command line (see RegisterFlags);
	// they override everything.
	Flags map[string]string
}

// Load merges defaults, file, environment and flags, in that order, and
// validates the result. Warnings name deprecated or unknown settings that were
// ignored; errors name the source, the option and the value.
func Load(src Sources) (Config, []string, error) {
	entries, file, err := readFile(src.File)
	if err != nil {
		return Config{}, nil, err
	}
	return merge(entries, file, src)
}

// merge applies the file's entries (read from file), then src's environment
// and flags, over the defaults, and validates the result.
func merge(entries []entry, file string, src Sources) (Config, []string, error) {
	c := Defaults()
	var warnings []string
	var errs []error
	for _, e := range entries {
		where := fmt.Sprintf("%s:%d", file, e.line)
		w, err := apply(&c, e.key, e.value, where, true)
		warnings = append(warnings, w...)
		errs = append(errs, err)
	}
	w, err := applyEnv(&c, src.Env)
	warnings = append(warnings, w...)
	errs = append(errs, err)
	for _, name := range Names() {
		if v, ok := src.Flags[name]; ok {
			_, err := apply(&c, name, v, "flag -"+name, true)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, warnings, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, warnings, fmt.Errorf("invalid configuration: %w", err)
	}
	if c.AgentFenceGrace != 0 && c.AgentFenceGrace >= c.AgentTTL {
		warnings = append(warnings, fmt.Sprintf("agent_fence_grace = %v is not shorter than agent_ttl = %v: a unit moved off a cut-off machine may run on two machines for up to %v before this machine fences", c.AgentFenceGrace, c.AgentTTL, c.AgentFenceGrace-c.AgentTTL))
	}
	return c, warnings, nil
}

// readFile reads and parses the configuration file, if any.
func readFile(named string) ([]entry, string, error) {
	file := named
	if file == "" {
		if _, err := os.Stat(DefaultFile); errors.Is(err, fs.ErrNotExist) {
			return nil, "", nil
		}
		file = DefaultFile
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, file, fmt.Errorf("config file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, file, fmt.Errorf("config file %s is not a regular file", file)
	}
	if st.Size() > maxFileBytes {
		return nil, file, fmt.Errorf("config file %s is larger than the limit of %d bytes", file, maxFileBytes)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, file, fmt.Errorf("config file: %w", err)
	}
	entries, err := parseINI(file, data)
	return entries, file, err
}

// apply sets one option from a source named where. Unknown names are errors
// when strict (a file, a flag), warnings otherwise.
func apply(c *Config, name, value, where string, strict bool) ([]string, error) {
	if why, ok := deprecated[name]; ok {
		return []string{fmt.Sprintf("%s: %s: %s", where, name, why)}, nil
	}
	o, ok := lookup(name)
	if !ok {
		if strict {
			return nil, fmt.Errorf("%s: unknown option %q", where, name)
		}
		return []string{fmt.Sprintf("%s: unknown option %q ignored", where, name)}, nil
	}
	if err := o.set(c, value); err != nil {
		return nil, fmt.Errorf("%s: %s = %q: %w", where, name, value, err)
	}
	return nil, nil
}

// applyEnv applies FLEET_<OPTION> variables. An empty variable is ignored
// (fleet let it override the file with an empty value).
func applyEnv(c *Config, env []string) ([]string, error) {
	var warnings []string
	var errs []error
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		name, isFleet := strings.CutPrefix(k, "FLEET_")
		if !ok || !isFleet || v == "" {
			continue
		}
		w, err := apply(c, strings.ToLower(name), v, "environment "+k, false)
		warnings = append(warnings, w...)
		errs = append(errs, err)
	}
	return warnings, errors.Join(errs...)
}

// RegisterFlags adds every option to flags under its name (etcd_servers) and a
// dashed alias (etcd-servers). The returned function, called after fs.Parse,
// gives the values set on the command line, keyed by option name.
// flags.Parse must come before the returned function is called.
func RegisterFlags(flags *flag.FlagSet) func() map[string]string {
	set := map[string]string{}
	for _, name := range Names() {
		v := &flagValue{name: name, set: set}
		flags.Var(v, name, Usage(name))
		if dashed := strings.ReplaceAll(name, "_", "-"); dashed != name {
			flags.Var(v, dashed, "alias of -"+name)
		}
	}
	return func() map[string]string { return set }
}

// flagValue records a flag's value under its option name.
type flagValue struct {
	name string
	set  map[string]string
}

func (f *flagValue) String() string { return "" }
func (f *flagValue) Set(v string) error {
	f.set[f.name] = v
	return nil
}

// Changed compares two configurations and lists the options that differ:
// those a running fleetd can take (reloadable) and those that need a restart.
func Changed(old, cur Config) (reloadable, restart []string) {
	for _, o := range options {
		if o.get(old) == o.get(cur) {
			continue
		}
		if o.reload {
			reloadable = append(reloadable, o.name)
		} else {
			restart = append(restart, o.name)
		}
	}
	return reloadable, restart
}

func fsMode(n uint64) fs.FileMode { return fs.FileMode(n) }
