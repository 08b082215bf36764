package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/core"
	"github.com/fleet-rebuild/fleet/internal/fleetclient"
)

// fleetctlTypes are the suffixes fleetctl keeps; any other name gets
// ".service" appended, as in fleet.
var fleetctlTypes = []string{".service", ".socket", ".timer", ".path", ".device", ".mount", ".automount"}

// unitName mangles a command-line argument into a unit name: its base name,
// with ".service" appended unless it ends in one of fleetctlTypes.
func unitName(arg string) string {
	name := path.Base(arg)
	for _, t := range fleetctlTypes {
		if strings.HasSuffix(name, t) {
			return name
		}
	}
	return name + ".service"
}

// unitNames mangles and validates every argument before anything is read or
// written.
func unitNames(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, arg := range args {
		name := unitName(arg)
		if err := core.ValidateName(name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}

// localFile is a unit file read from disk.
type localFile struct {
	path string
	file *core.UnitFile
}

// readUnitFile reads and parses the unit file at p. Errors name the file and,
// for a malformed file, the line.
func readUnitFile(p string) (*localFile, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("unable to read unit file: %w", err)
	}
	uf, err := core.ParseUnitFile(p, data)
	if err != nil {
		return nil, err
	}
	return &localFile{path: p, file: uf}, nil
}

// unitFilePath is where the file of unit name given as arg is: the path
// itself, or the mangled name next to it (arg "web" for web.service). It is
// "" when neither exists.
func unitFilePath(arg, name string) (string, error) {
	for _, p := range []string{arg, filepath.Join(filepath.Dir(arg), name)} {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("unable to read unit file: %w", err)
		}
	}
	return "", nil
}

// findLocal looks for the file of unit name given as arg (see unitFilePath),
// or for an instance its template next to it. It returns nil, nil when there
// is no such file.
func findLocal(arg, name string) (*localFile, error) {
	p, err := unitFilePath(arg, name)
	if err != nil || p != "" {
		if err != nil {
			return nil, err
		}
		return readUnitFile(p)
	}
	un, err := core.ParseUnitName(name)
	if err != nil || !un.IsInstance() {
		return nil, err
	}
	p, err = unitFilePath(filepath.Join(filepath.Dir(arg), un.Template()), un.Template())
	if err != nil || p == "" {
		return nil, err
	}
	return readUnitFile(p)
}

// creation is what creating one unit argument will do, decided before any
// write.
type creation struct {
	name    string
	options []api.UnitOption // to store; nil: nothing to do
	replace bool
}

// planCreates resolves every argument of submit, load, start or restart
// (spec §2.2): existing units are kept (with the "differs" warning) or
// replaced when replaceable lists their desired state; new ones come from
// their file, or for instances from their template in the registry or next
// to the argument. Every argument is checked before the first write.
func (a *app) planCreates(ctx context.Context, c fleetclient.Client, args []string, replace bool, replaceable ...string) ([]creation, error) {
	names, err := unitNames(args)
	if err != nil {
		return nil, err
	}
	var plan []creation
	for i, arg := range args {
		cr, err := a.planCreate(ctx, c, arg, names[i], replace, replaceable)
		if err != nil {
			return nil, err
		}
		plan = append(plan, cr)
	}
	return plan, nil
}

func (a *app) planCreate(ctx context.Context, c fleetclient.Client, arg, name string, replace bool, replaceable []string) (creation, error) {
	cr := creation{name: name}
	existing, err := c.Unit(ctx, name)
	switch {
	case errors.Is(err, fleetclient.ErrNotFound):
	case err != nil:
		return cr, fmt.Errorf("error retrieving unit %s from registry: %w", name, err)
	default:
		local, err := findLocal(arg, name)
		if err != nil || local == nil {
			return cr, err
		}
		same := local.file.Hash() == core.NewUnitFile(coreOptions(existing.Options)).Hash()
		switch {
		case !replace:
			if !same {
				fmt.Fprintf(a.stderr, "WARNING: Unit %s in registry differs from local unit file %s. Add --replace to override.\n", name, local.path)
			}
		case same:
			fmt.Fprintf(a.stdout, "Found same Unit(%s) in Registry, nothing to do\n", name)
		case !slices.Contains(replaceable, existing.DesiredState):
			fmt.Fprintf(a.stderr, "Warning: can not replace Unit(%s) in state '%s', use the appropriate command\n", name, existing.DesiredState)
		default:
			if _, err := a.prepareLocal(name, local); err != nil {
				return cr, err
			}
			cr.options, cr.replace = apiOptions(local.file.Options), true
		}
		return cr, nil
	}
	opts, err := a.newUnitOptions(ctx, c, arg, name)
	if err != nil {
		return cr, err
	}
	cr.options = opts
	return cr, nil
}

// newUnitOptions finds the contents of a unit not yet in the registry.
func (a *app) newUnitOptions(ctx context.Context, c fleetclient.Client, arg, name string) ([]api.UnitOption, error) {
	p, err := unitFilePath(arg, name)
	if err != nil {
		return nil, err
	}
	if p != "" {
		local, err := readUnitFile(p)
		if err != nil {
			return nil, err
		}
		return a.checked(name, local)
	}
	un, err := core.ParseUnitName(name)
	if err != nil {
		return nil, err
	}
	if un.IsInstance() {
		tmpl, err := c.Unit(ctx, un.Template())
		switch {
		case err == nil:
			return tmpl.Options, nil
		case !errors.Is(err, fleetclient.ErrNotFound):
			return nil, fmt.Errorf("error retrieving template %s from registry: %w", un.Template(), err)
		}
		local, err := findLocal(arg, name)
		if err != nil {
			return nil, err
		}
		if local != nil {
			return a.checked(name, local)
		}
	}
	return nil, fmt.Errorf("unable to find Unit(%s) in Registry or on filesystem", name)
}

// checked validates a local file as unit name (the [X-Fleet] rules) and
// returns its options.
func (a *app) checked(name string, local *localFile) ([]api.UnitOption, error) {
	sub, err := a.prepareLocal(name, local)
	if err != nil {
		return nil, err
	}
	return apiOptions(sub.File.Options), nil
}

// prepareLocal checks a local file as unit name; an [X-Fleet] error names
// the file. Unknown [X-Fleet] options are accepted with a warning, as by
// fleet.
func (a *app) prepareLocal(name string, local *localFile) (core.Submission, error) {
	sub, err := core.PrepareUnit(name, local.file.Bytes())
	var re *core.RequirementsError
	if errors.As(err, &re) {
		named := *re
		named.Unit = local.path
		return sub, &named
	}
	for _, k := range sub.Requirements.Unknown {
		fmt.Fprintf(a.stderr, "WARNING: %s: unrecognized [X-Fleet] option %s, ignored\n", local.path, k)
	}
	return sub, err
}

// applyCreates writes the plan and waits for each new or replaced unit to
// read inactive, printing "Unit <name> inactive".
func (a *app) applyCreates(ctx context.Context, c fleetclient.Client, plan []creation, attempts int) error {
	var written []string
	for _, cr := range plan {
		if cr.options == nil {
			continue
		}
		u := api.Unit{Name: cr.name, Options: cr.options}
		var err error
		if cr.replace {
			err = c.ReplaceUnit(ctx, u)
		} else {
			err = c.CreateUnit(ctx, u)
		}
		if err != nil {
			return fmt.Errorf("Error creating units: %w", err)
		}
		written = append(written, cr.name)
	}
	if len(written) == 0 {
		return nil
	}
	return a.waitStates(ctx, c, written, string(core.Inactive), attempts, false)
}

func coreOptions(opts []api.UnitOption) []core.Option {
	out := make([]core.Option, len(opts))
	for i, o := range opts {
		out[i] = core.Option{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out
}

func apiOptions(opts []core.Option) []api.UnitOption {
	out := make([]api.UnitOption, len(opts))
	for i, o := range opts {
		out[i] = api.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out
}

// findUnits returns the units of names that exist, in the order given,
// from one listing; unknown names are left out.
func findUnits(ctx context.Context, c fleetclient.Client, names []string) ([]api.Unit, error) {
	all, err := c.Units(ctx)
	if err != nil {
		return nil, fmt.Errorf("error retrieving list of units from repository: %w", err)
	}
	byName := map[string]api.Unit{}
	for _, u := range all {
		byName[u.Name] = u
	}
	var out []api.Unit
	for _, n := range names {
		if u, ok := byName[n]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// isGlobal reports whether a unit's [X-Fleet] Global is truthy.
func isGlobal(u api.Unit) bool {
	req, err := core.ParseRequirements(u.Name, core.NewUnitFile(coreOptions(u.Options)))
	return err == nil && req.Global
}
