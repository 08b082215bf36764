package main

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"
)

// newFdForwardCmd is fleet's internal fd-forward: it proxies stdin and
// stdout to a unix socket, so that a fleetctl elsewhere can reach this
// machine's API over an SSH session.
func (a *app) newFdForwardCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "fd-forward SOCKET",
		Short:  "Proxy stdin and stdout to a unix domain socket",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d net.Dialer
			conn, err := d.DialContext(cmd.Context(), "unix", args[0])
			if err != nil {
				return fmt.Errorf("unable to connect to %s: %w", args[0], err)
			}
			uc := conn.(*net.UnixConn)
			defer uc.Close()
			up := make(chan error, 1)
			go func() {
				_, err := io.Copy(uc, a.stdin)
				if cerr := uc.CloseWrite(); err == nil {
					err = cerr
				}
				up <- err
			}()
			_, err = io.Copy(a.stdout, uc)
			// The socket's answer is complete; stdin may stay open (a
			// terminal), so the upload is awaited only if it already ended.
			select {
			case uerr := <-up:
				return errors.Join(err, uerr)
			default:
				return err
			}
		},
	}
}
