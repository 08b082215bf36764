package core

import "time"

// Clock gives time to the drivers and backends that need it: real time in
// production, virtual time in the simulator. The passes themselves take now as
// a value.
type Clock interface {
	Now() time.Time
}
