package fakesystemd

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-rebuild/fleet/core"
)

// The load states the fake reports, as systemd names them.
const (
	// LoadBadSetting: the file has a setting systemd refuses (for a service: no
	// ExecStart=, several ExecStart= outside Type=oneshot, or Type=oneshot with
	// Restart=always or on-success), or it cannot be parsed.
	LoadBadSetting = "bad-setting"
	// LoadError: the file could not be loaded (injected with Faults.LoadError).
	LoadError = "error"
)

// Systemd's defaults for the settings the fake reads.
const (
	defaultRestartSec       = 100 * time.Millisecond
	defaultStartLimitBurst  = 5
	defaultStartLimitPeriod = 10 * time.Second
	// minRestartDelay keeps an auto-restart loop from running at one instant.
	minRestartDelay = time.Millisecond
)

// program is what a unit's main process does once started.
type program uint8

const (
	runs      program = iota // keeps running until stopped or crashed
	exitsOK                  // exits with status 0 (ExecStart=/bin/true)
	exitsFail                // exits with status 1 (ExecStart=/bin/false)
)

// exitCause is why a main process ended, for Restart=.
type exitCause uint8

const (
	cleanExit  exitCause = iota // status 0
	failedExit                  // non-zero status, or a start that failed
	killed                      // killed by a signal (a crash)
)

// restartPolicy is a Restart= setting.
type restartPolicy uint8

const (
	restartNo restartPolicy = iota
	restartAlways
	restartOnSuccess
	restartOnFailure
	restartOnAbnormal
	restartOnAbort
	restartOnWatchdog
)

// restartPolicies maps Restart= values to policies.
var restartPolicies = map[string]restartPolicy{
	"no": restartNo, "always": restartAlways, "on-success": restartOnSuccess,
	"on-failure": restartOnFailure, "on-abnormal": restartOnAbnormal,
	"on-abort": restartOnAbort, "on-watchdog": restartOnWatchdog,
}

// spec is what the fake reads from a unit file. It is small on purpose: the
// simulator keeps two per unit on thousands of machines.
type spec struct {
	restartSec   time.Duration
	limitPeriod  time.Duration // 0 disables the start limit
	limitBurst   int32
	program      program
	restart      restartPolicy
	bad          bool // systemd refuses the file: LoadState "bad-setting"
	remain       bool // RemainAfterExit=yes
	wantedByBoot bool // [Install] WantedBy=default.target
}

// restartsAfter reports whether Restart= restarts the unit after cause.
func (s spec) restartsAfter(cause exitCause) bool {
	switch s.restart {
	case restartAlways:
		return true
	case restartOnSuccess:
		return cause == cleanExit
	case restartOnFailure:
		return cause != cleanExit
	case restartOnAbnormal, restartOnAbort:
		return cause == killed
	}
	return false
}

// parseSpec reads the settings the fake models from a unit file. Like systemd
// it ignores settings it does not know and values it cannot parse, and refuses
// only the combinations systemd refuses.
func parseSpec(name string, contents []byte) spec {
	sp := spec{
		restartSec:  defaultRestartSec,
		limitBurst:  defaultStartLimitBurst,
		limitPeriod: defaultStartLimitPeriod,
	}
	uf, err := core.ParseUnitFile(name, contents)
	if err != nil {
		sp.bad = true
		return sp
	}
	var execs []string
	typ, typeSet, hasStop := "simple", false, false
	for _, o := range uf.Options {
		switch o.Section + "." + o.Name {
		case "Service.ExecStart":
			if o.Value == "" {
				execs = execs[:0] // an empty assignment resets the list
			} else {
				execs = append(execs, o.Value)
			}
		case "Service.ExecStop", "Service.SuccessAction":
			hasStop = hasStop || o.Value != ""
		case "Service.Type":
			if isServiceType(o.Value) {
				typ, typeSet = o.Value, true
			}
		case "Service.RemainAfterExit":
			if b, ok := parseBool(o.Value); ok {
				sp.remain = b
			}
		case "Service.Restart":
			if p, ok := restartPolicies[o.Value]; ok {
				sp.restart = p
			}
		case "Service.RestartSec":
			if d, ok := parseTimespan(o.Value); ok {
				sp.restartSec = d
			}
		case "Unit.StartLimitBurst":
			if n, err := strconv.ParseInt(o.Value, 10, 32); err == nil && n >= 0 {
				sp.limitBurst = int32(n)
			}
		case "Unit.StartLimitIntervalSec":
			if d, ok := parseTimespan(o.Value); ok {
				sp.limitPeriod = d
			}
		case "Install.WantedBy":
			sp.wantedByBoot = sp.wantedByBoot || slices.Contains(strings.Fields(o.Value), "default.target")
		}
	}
	if !strings.HasSuffix(name, ".service") {
		return sp
	}
	if len(execs) == 0 && !typeSet {
		typ = "oneshot" // systemd's default for a service without ExecStart=
	}
	oneshot := typ == "oneshot"
	sp.bad = len(execs) == 0 && (!oneshot || !hasStop) ||
		len(execs) > 1 && !oneshot ||
		oneshot && (sp.restart == restartAlways || sp.restart == restartOnSuccess)
	sp.program = programOf(execs)
	if oneshot && sp.program == runs {
		sp.program = exitsOK // a oneshot service is done when its commands return
	}
	return sp
}

// programOf guesses what the main command does from its name: /bin/false
// fails, /bin/true succeeds, anything else runs until stopped. With several
// commands (Type=oneshot) the first failing one decides.
func programOf(execs []string) program {
	result := runs
	for _, line := range execs {
		cmd := strings.TrimLeft(line, "@-:+!")
		fields := strings.Fields(cmd)
		if len(fields) == 0 {
			continue
		}
		switch path.Base(strings.Trim(fields[0], `"'`)) {
		case "false":
			return exitsFail
		case "true":
			result = exitsOK
		}
	}
	return result
}

func isServiceType(v string) bool {
	switch v {
	case "simple", "exec", "forking", "oneshot", "dbus", "notify", "idle":
		return true
	}
	return false
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, true
	case "0", "no", "n", "false", "f", "off":
		return false, true
	}
	return false, false
}

// timeUnits are the systemd time span units the fake understands.
var timeUnits = map[string]time.Duration{
	"us": time.Microsecond, "usec": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond,
	"": time.Second, "s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
}

// parseTimespan parses a systemd time span such as "5", "100ms" or "1min 30s".
func parseTimespan(v string) (time.Duration, bool) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, f := range fields {
		i := strings.IndexFunc(f, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i < 0 {
			i = len(f)
		}
		n, err := strconv.ParseFloat(f[:i], 64)
		unit, known := timeUnits[f[i:]]
		if err != nil || !known || n < 0 {
			return 0, false
		}
		total += time.Duration(n * float64(unit))
	}
	return total, true
}

// subStates are the sub-states a unit type shows while starting, while
// active, and while stopping.
type subStates struct{ starting, active, stopping string }

// subStatesOf returns the sub-states of the type of the named unit.
func subStatesOf(name string) subStates {
	switch name[strings.LastIndexByte(name, '.')+1:] {
	case "service":
		return subStates{"start", "running", "stop-sigterm"}
	case "socket":
		return subStates{"start-pre", "listening", "stop-pre"}
	case "mount":
		return subStates{"mounting", "mounted", "unmounting"}
	case "swap":
		return subStates{"activating", "active", "deactivating"}
	case "timer", "path", "automount":
		return subStates{"dead", "waiting", "dead"}
	case "scope":
		return subStates{"dead", "running", "stop-sigterm"}
	case "device":
		return subStates{"dead", "plugged", "dead"}
	}
	return subStates{"dead", "active", "dead"} // target, slice, snapshot, busname
}
