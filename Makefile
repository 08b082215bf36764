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
