package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// errSigned is fleet's answer to the signed-units feature it removed: exit 2.
var errSigned = &exitError{code: 2, err: errors.New("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.")}

// newVerifyCmd is fleet's deprecated verify: it always fails with exit 2.
func (a *app) newVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:        "verify UNIT",
		Short:      "DEPRECATED - No longer works",
		Deprecated: "DEPRECATED - No longer works",
		Hidden:     true,
		RunE:       func(*cobra.Command, []string) error { return errSigned },
	}
}
