package fleetclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleet-rebuild/fleet/api"
	"github.com/fleet-rebuild/fleet/backends/etcd"
	"github.com/fleet-rebuild/fleet/core"
)

// EtcdConfig says how to reach the registry directly.
type EtcdConfig struct {
	// Client is how to reach etcd (endpoints, TLS).
	Client etcd.ClientConfig
	// Prefix is the registry's key prefix (etcd.DefaultPrefix if empty).
	Prefix string
	// RequestTimeout bounds each registry request and the first connection.
	RequestTimeout time.Duration
}

// etcdClient is a Client on the etcd registry, deriving what the API derives
// (options from the stored contents, current state from core.CurrentState).
type etcdClient struct {
	cli *clientv3.Client
	reg *etcd.Registry
}

var _ Client = (*etcdClient)(nil)

// NewEtcd connects to etcd and returns a Client on the registry there.
func NewEtcd(ctx context.Context, cfg EtcdConfig) (Client, error) {
	if cfg.RequestTimeout > 0 {
		cfg.Client.DialTimeout = cfg.RequestTimeout
	}
	cli, err := etcd.Dial(ctx, cfg.Client)
	if err != nil {
		return nil, err
	}
	opts := []etcd.Option{etcd.WithRetry(1, 0)}
	if cfg.Prefix != "" {
		opts = append(opts, etcd.WithPrefix(cfg.Prefix))
	}
	if cfg.RequestTimeout > 0 {
		opts = append(opts, etcd.WithRequestTimeout(cfg.RequestTimeout))
	}
	reg, err := etcd.New(cli, opts...)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &etcdClient{cli: cli, reg: reg}, nil
}

func (e *etcdClient) Close() error { return e.cli.Close() }

// missing turns the registry's ErrUnitNotFound into ErrNotFound.
func missing(err error) error {
	if errors.Is(err, core.ErrUnitNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func (e *etcdClient) Units(ctx context.Context) ([]api.Unit, error) {
	units, err := e.reg.Units(ctx)
	if err != nil {
		return nil, err
	}
	return e.entities(ctx, units)
}

func (e *etcdClient) Unit(ctx context.Context, name string) (api.Unit, error) {
	if core.ValidateName(name) != nil {
		return api.Unit{}, fmt.Errorf("%w: unit %s", ErrNotFound, name)
	}
	u, err := e.reg.Unit(ctx, name)
	if err != nil {
		return api.Unit{}, missing(err)
	}
	out, err := e.entities(ctx, []core.Unit{u})
	if err != nil {
		return api.Unit{}, err
	}
	if len(out) == 0 {
		return api.Unit{}, fmt.Errorf("%w: unit %s", ErrNotFound, name)
	}
	return out[0], nil
}

// entities turns units into API entities as the API does: options from the
// stored contents (a unit whose contents vanished meanwhile is left out),
// and for non-global units the derived current state and the lowest machine
// the unit is placed on.
func (e *etcdClient) entities(ctx context.Context, units []core.Unit) ([]api.Unit, error) {
	slices.SortFunc(units, func(a, b core.Unit) int { return strings.Compare(a.Name, b.Name) })
	ps, err := e.reg.Placements(ctx)
	if err != nil {
		return nil, err
	}
	sts, err := e.reg.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	current := core.CurrentStates(ps, sts)
	placed := map[string][]core.Placement{}
	for _, p := range ps {
		placed[p.Unit] = append(placed[p.Unit], p)
	}
	out := make([]api.Unit, 0, len(units))
	for _, u := range units {
		data, err := e.reg.UnitContents(ctx, u.Hash)
		if errors.Is(err, core.ErrUnitNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		uf, err := core.ParseUnitFile(u.Name, data)
		if err != nil {
			return nil, fmt.Errorf("stored contents of %s do not parse: %w", u.Name, err)
		}
		ent := api.Unit{Name: u.Name, Options: apiOptions(uf.Options), DesiredState: string(u.TargetState)}
		if !u.Global {
			mine := placed[u.Name]
			ent.CurrentState = string(current.Of(u.Name))
			if len(mine) > 0 {
				ent.MachineID = slices.MinFunc(mine, func(a, b core.Placement) int { return strings.Compare(a.Machine, b.Machine) }).Machine
			}
		}
		out = append(out, ent)
	}
	return out, nil
}

func apiOptions(opts []core.Option) []api.UnitOption {
	out := make([]api.UnitOption, len(opts))
	for i, o := range opts {
		out[i] = api.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out
}

func (e *etcdClient) UnitStates(ctx context.Context) ([]api.UnitState, error) {
	sts, err := e.reg.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.UnitState, len(sts))
	for i, s := range sts {
		out[i] = api.UnitState{Name: s.Unit, Hash: string(s.Hash), MachineID: s.Machine,
			SystemdLoadState: s.LoadState, SystemdActiveState: s.ActiveState, SystemdSubState: s.SubState}
	}
	slices.SortFunc(out, func(a, b api.UnitState) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.MachineID, b.MachineID)
	})
	return out, nil
}

func (e *etcdClient) Machines(ctx context.Context) ([]api.Machine, error) {
	ms, err := e.reg.Machines(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b core.MachineState) int { return strings.Compare(a.ID, b.ID) })
	out := make([]api.Machine, len(ms))
	for i, m := range ms {
		out[i] = api.Machine{ID: m.ID, PrimaryIP: m.PublicIP, Metadata: maps.Clone(m.Metadata)}
		if len(out[i].Metadata) == 0 {
			out[i].Metadata = nil
		}
	}
	return out, nil
}

// prepare checks u as the API checks a PUT with options: a valid name, a
// valid unit file and [X-Fleet] section, a desired state the unit may take.
func prepare(u api.Unit) (core.Submission, error) {
	opts := make([]core.Option, len(u.Options))
	for i, o := range u.Options {
		opts[i] = core.Option{Section: o.Section, Name: strings.TrimSpace(o.Name), Value: strings.TrimSpace(o.Value)}
	}
	sub, err := core.PrepareUnit(u.Name, core.NewUnitFile(opts).Bytes())
	if err != nil {
		return core.Submission{}, err
	}
	if u.DesiredState != "" {
		st, err := core.ParseJobState(u.DesiredState)
		if err != nil {
			return core.Submission{}, err
		}
		if err := core.CheckActivatable(u.Name, st); err != nil {
			return core.Submission{}, err
		}
		sub.Unit.TargetState = st
	}
	return sub, nil
}

func (e *etcdClient) CreateUnit(ctx context.Context, u api.Unit) error {
	sub, err := prepare(u)
	if err != nil {
		return err
	}
	return e.reg.CreateUnit(ctx, sub.Unit, sub.File.Bytes())
}

func (e *etcdClient) ReplaceUnit(ctx context.Context, u api.Unit) error {
	sub, err := prepare(u)
	if err != nil {
		return err
	}
	return missing(e.reg.ReplaceUnit(ctx, sub.Unit, sub.File.Bytes()))
}

func (e *etcdClient) SetTargetState(ctx context.Context, name, state string) error {
	st, err := core.ParseJobState(state)
	if err != nil {
		return err
	}
	if err := core.CheckActivatable(name, st); err != nil {
		return err
	}
	return missing(e.reg.SetTargetState(ctx, name, st))
}

func (e *etcdClient) DestroyUnit(ctx context.Context, name string) error {
	return missing(e.reg.DestroyUnit(ctx, name))
}
