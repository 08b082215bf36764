// Command fleetsim runs fleet's deterministic cluster simulator: scenario files
// (fleetsim run) or generated clusters with faults (fleetsim gen). It prints the
// seed first, so that any run can be replayed, and exits with a status that
// says what went wrong (see exitStatusHelp).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills at once.
		<-ctx.Done()
		stop()
	}()
	status := execute(ctx, os.Args[1:], streams{out: os.Stdout, errOut: os.Stderr})
	stop()
	os.Exit(status)
}
