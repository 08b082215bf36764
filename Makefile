GO ?= go

.PHONY: build test test-long bench lint sim

build:
	$(GO) build ./...

test:
	$(GO) test -count=1 ./...

# Longer property runs: RAPID_CHECKS raises the number of histories per property.
test-long:
	RAPID_CHECKS=2000 $(GO) test -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...

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
