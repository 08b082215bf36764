// Command fleetsim runs fleet's deterministic cluster simulator: scenario files
// (fleetsim run) or generated clusters with faults (fleetsim gen). It prints the
// seed first, so that any run can be replayed, and exits non-zero when an
// invariant breaks or a checked output differs.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], streams{out: os.Stdout, errOut: os.Stderr}))
}
