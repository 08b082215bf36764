// Command fleetd is fleet's daemon: one per machine. It only parses options
// and wires the daemon package to the process: signals, logging, socket
// activation and sd_notify.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"

	"github.com/fleet-rebuild/fleet/daemon"
	"github.com/fleet-rebuild/fleet/daemon/config"
	"github.com/fleet-rebuild/fleet/internal/journallog"
	"github.com/fleet-rebuild/fleet/internal/version"
)

// stopTimeout bounds a graceful stop (fleet: 60 s).
const stopTimeout = 60 * time.Second

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run is fleetd with its arguments and output streams; it returns the exit
// code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "configuration file (default "+config.DefaultFile+" if it exists)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	flags := config.RegisterFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	switch {
	case *showVersion || fs.NArg() == 1 && fs.Arg(0) == "version":
		fmt.Fprintf(stdout, "fleetd version %s\n", version.Version)
		return 0
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s takes no arguments. Did you mean to invoke fleetctl instead?\n", args[0])
		fs.Usage()
		return 1
	}
	src := config.Sources{File: *configFile, Env: os.Environ(), Flags: flags()}
	level := new(slog.LevelVar)
	log := newLogger(stderr, level)
	cfg, warnings, err := config.Load(src)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		log.Error("fleetd: bad configuration", "err", err)
		return 1
	}
	listeners, err := activation.Listeners()
	if err != nil {
		log.Error("fleetd: socket activation", "err", err)
		return 1
	}
	ctx := context.Background()
	d, err := daemon.Start(ctx, daemon.Options{
		Config: cfg, Version: version.Version, Logger: log, Level: level,
		Listeners: listeners, Notify: sdNotify(log),
	})
	if err != nil {
		log.Error("fleetd: cannot start", "err", err)
		return 1
	}
	return serve(d, src, log)
}

// serve handles signals until fleetd stops.
func serve(d *daemon.Daemon, src config.Sources, log *slog.Logger) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	code := 0
	for {
		select {
		case err := <-d.Err():
			log.Error("fleetd: a component failed; stopping", "err", err)
			code = 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(d, src, log)
				continue
			}
			log.Info("fleetd: signal received", "signal", sig.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		err := d.Stop(ctx)
		cancel()
		if err != nil {
			log.Error("fleetd: stop", "err", err)
			return 1
		}
		return code
	}
}

// reload re-reads the configuration from the same sources and applies it, or
// logs why it cannot (nothing is then changed).
func reload(d *daemon.Daemon, src config.Sources, log *slog.Logger) {
	cfg, warnings, err := config.Load(src)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err == nil {
		err = d.Reload(context.Background(), cfg)
	}
	if err != nil {
		log.Error("fleetd: SIGHUP: configuration not reloaded", "err", err)
	}
}

// newLogger logs to the journal when stderr is connected to it (fleetd run by
// systemd), and as text to stderr otherwise.
func newLogger(stderr io.Writer, level *slog.LevelVar) *slog.Logger {
	if ok, err := journal.StderrIsJournalStream(); err == nil && ok && journal.Enabled() {
		return slog.New(journallog.New(level))
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// sdNotify sends states to systemd when fleetd runs as a notify service.
func sdNotify(log *slog.Logger) func(string) {
	return func(state string) {
		if _, err := sddaemon.SdNotify(false, state); err != nil {
			log.Debug("sd_notify", "err", err)
		}
	}
}
