#!/usr/bin/env bash
# Bring up and tear down a local fleet cluster of real processes on this host:
# what `make cluster` and `make cluster-down` run. See docs/cluster.md.
#
#   scripts/local-cluster.sh up       # MACHINES=3 ETCD= (embedded) by default
#   scripts/local-cluster.sh status
#   scripts/local-cluster.sh down
#
# Environment:
#   MACHINES      number of machines (default 3)
#   ETCD          empty or 0: etcd embedded in the first fleetd; 3: a separate
#                 three-member etcd cluster of real processes
#   UNIT_MANAGER  auto (default), systemd or fake
#   CLUSTER_DIR   where the cluster keeps its state, binaries and logs
#                 (default /tmp/fleet-cluster)
#   GO            the go command (default go)
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
DIR=${CLUSTER_DIR:-/tmp/fleet-cluster}
MACHINES=${MACHINES:-3}
ETCD=${ETCD:-0}
UNIT_MANAGER=${UNIT_MANAGER:-auto}

up() {
	local bin=$DIR/bin
	mkdir -p "$bin"
	echo "building fleetd, fleetctl and fleet-cluster into $bin"
	"$GO" build -o "$bin/fleetd" ./cmd/fleetd
	"$GO" build -o "$bin/fleet-cluster" ./cmd/fleet-cluster
	"$GO" build -o "$bin/fleetctl" ./cmd/fleetctl
	exec "$bin/fleet-cluster" up -dir "$DIR" -machines "$MACHINES" -etcd "$ETCD" \
		-unit-manager "$UNIT_MANAGER" -fleetd "$bin/fleetd" -fleetctl "$bin/fleetctl" -examples examples/units
}

down() {
	# Built afresh: the copy under $DIR/bin may be gone after a crash.
	"$GO" run ./cmd/fleet-cluster down -dir "$DIR"
	# Binaries built by an up that failed before it recorded anything.
	rm -rf "$DIR/bin"
	rmdir "$DIR" 2> /dev/null || true
}

case ${1:-} in
up) up ;;
down) down ;;
status) "$GO" run ./cmd/fleet-cluster status -dir "$DIR" ;;
*) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
