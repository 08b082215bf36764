GO ?= go

.PHONY: build test test-long bench bench-sim lint sim

build:
	$(GO) build ./...

test:
	$(GO) test -count=1 ./...

# Longer property runs: RAPID_CHECKS raises the number of histories per property.
test-long:
	RAPID_CHECKS=2000 $(GO) test -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# The simulator's benchmarks (docs/bench/sim.md): speed with faults, the
# convergence curve over units × machines on memory and embedded etcd, 100,000
# units on 10,000 machines, and C1M (1,000,000 units on 5,000 machines; minutes
# and several GB), each run alone so that its peak RSS is its own.
bench-sim:
	$(GO) test -c -o /tmp/fleet-bench-sim.test ./sim
	cd sim && /tmp/fleet-bench-sim.test -test.run '^$$' -test.bench 'Speed100' -test.benchtime 1x -test.count 3
	cd sim && SIM_CURVE=1 /tmp/fleet-bench-sim.test -test.run '^$$' -test.bench 'Curve' -test.benchtime 1x
	cd sim && /tmp/fleet-bench-sim.test -test.run '^$$' -test.bench 'Converge100k' -test.benchtime 1x -test.count 3
	cd sim && SIM_C1M=1 /tmp/fleet-bench-sim.test -test.run '^$$' -test.bench 'C1M' -test.benchtime 1x -test.timeout 30m
	rm -f /tmp/fleet-bench-sim.test

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...

# Fuzzing (docs/fuzzing.md): each target for FUZZTIME, one at a time (go test
# -fuzz takes one package and one target). FUZZFLAGS go to every run, such as
# -parallel 1 on a shared machine. Go 1.26's fuzzer may end a clean run with a
# bare "context deadline exceeded" (golang/go#75804): that is reported and
# passed over; a failure that wrote an input, or any other, stops make.
.PHONY: fuzz
FUZZTIME ?= 60s
FUZZFLAGS ?=
FUZZ_TARGETS ?= core:FuzzParseUnitFile core:FuzzRequirements core:FuzzUnitName \
	daemon/config:FuzzLoad api:FuzzHandler sim:FuzzScenario

fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log $$log.rc' EXIT; \
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "== $$name in ./$$pkg for $(FUZZTIME)"; \
		{ rc=0; $(GO) test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) || rc=$$?; echo $$rc >$$log.rc; } 2>&1 | tee $$log; \
		[ "$$(cat $$log.rc)" = 0 ] && continue; \
		if grep -q 'Failing input written to' $$log || ! grep -qx '    context deadline exceeded' $$log; then exit 1; fi; \
		echo "== $$name: the run ended on golang/go#75804 (no failing input): not a finding"; \
	done

# The main job until fleetd exists: a simulated cluster running an example scenario.
sim:
	$(GO) run ./cmd/fleetsim run --check examples/scenarios/failover.txt

# A local cluster of real processes: MACHINES machines (default 3), each with its
# own mount namespace, systemd user manager and fleetd; ETCD=3 for a separate
# three-member etcd. See docs/cluster.md.
.PHONY: cluster cluster-down
MACHINES ?= 3
ETCD ?= 0

cluster:
	MACHINES=$(MACHINES) ETCD=$(ETCD) GO=$(GO) scripts/local-cluster.sh up

cluster-down:
	GO=$(GO) scripts/local-cluster.sh down

# Benchmarks on clusters of real processes (root and systemd for the real part):
# fleetctl start against systemctl's floor, failover, etcd requests, idle cost,
# and 100 fleetd with 10,000 units. Sizes: BENCH_* variables (fleet-bench -h).
# See docs/bench/cluster.md.
.PHONY: bench-cluster
BENCH_DIR ?= /tmp/fleet-bench

bench-cluster:
	mkdir -p $(BENCH_DIR)/bin
	$(GO) build -o $(BENCH_DIR)/bin/ ./cmd/fleetd ./cmd/fleetctl ./cmd/fleet-cluster ./cmd/fleet-bench
	$(BENCH_DIR)/bin/fleet-bench -bin $(BENCH_DIR)/bin -dir $(BENCH_DIR); s=$$?; rm -r $(BENCH_DIR)/bin; rmdir $(BENCH_DIR) 2>/dev/null; exit $$s

# Faults on a cluster of real processes (root and systemd): the whole set,
# including what the quick set run by `go test ./...` leaves out. See
# docs/chaos.md.
.PHONY: chaos
CHAOS_COUNT ?= 1
chaos:
	CHAOS_FULL=1 $(GO) test -count=$(CHAOS_COUNT) -timeout 60m -v ./chaos

# A long run of random faults on a cluster in network namespaces (root and
# systemd): CHAOS_DURATION of faults drawn from CHAOS_SEED (unset: one made
# from the time, logged first with the command that replays it). The
# duration is a whole number of s, m or h; the test timeout is 1.5 times it
# plus 10 minutes. See docs/chaos.md.
.PHONY: chaos-random
CHAOS_DURATION ?= 30m
CHAOS_SEED ?=
chaos-random:
	@d='$(CHAOS_DURATION)'; n=$${d%[smh]}; \
	case "$$d" in *s) s=$$n;; *m) s=$$((n*60));; *h) s=$$((n*3600));; *) s=x;; esac; \
	case "$$n$$s" in *[!0-9]*|'') echo "CHAOS_DURATION=$$d: want a whole number of s, m or h" >&2; exit 2;; esac; \
	set -x; CHAOS_RANDOM=$$d CHAOS_SEED='$(CHAOS_SEED)' $(GO) test -count=1 -run '^TestRandomChaos$$' -timeout $$((s + s/2 + 600))s -v ./chaos
