package sim

// at runs `at TIME KIND [MACHINE] [until=TIME] [for=DURATION] [unit=NAME]`:
// it schedules a fault at a virtual time since the start, as a generated run
// does, with the same trace lines (a time already past strikes at once). The
// kinds are those of generated runs; crash, partition, registry-down and
// fail-starts end at until=, stall-engine and pause-engine-write last for=,
// crash-unit and systemctl-stop strike unit= (nothing without it).
func (s *Script) at(args []string) (string, error) {
	f, err := parsePlannedFault(args)
	if err != nil {
		return "", err
	}
	return userError(s.c.scheduleFault(f)), nil
}
