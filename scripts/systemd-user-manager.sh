#!/usr/bin/env bash
# Start and stop real systemd user managers to try fleet against by hand, the
# same way the Go harness backends/systemd/systemdtest does for tests: each in a
# private mount namespace with its own tmpfs /run, its own XDG_RUNTIME_DIR, its
# own cgroup subtree and, optionally, its own /etc/machine-id. Needs root.
#
#   scripts/systemd-user-manager.sh start NAME [MACHINE_ID]   # prints the env to use
#   scripts/systemd-user-manager.sh env NAME                  # prints it again
#   scripts/systemd-user-manager.sh stop NAME                 # stops it, cleans up
#   scripts/systemd-user-manager.sh list                      # the running ones
#
# Then, for example:
#   eval "$(scripts/systemd-user-manager.sh start m1)"
#   systemctl --user status
#
# Stop kills only processes inside the manager's own cgroups, removes those
# cgroups deepest first and deletes its directory.
set -euo pipefail

SYSTEMD=${SYSTEMD:-/lib/systemd/systemd}
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
	BASE=${FLEET_SDT_BASE:-/dev/shm}
else
	BASE=${FLEET_SDT_BASE:-${TMPDIR:-/tmp}}
fi

die() { echo "systemd-user-manager: $*" >&2; exit 1; }

dir_of() { echo "$BASE/fleet-sdt-$1"; }

check_name() {
	[[ $1 =~ ^[A-Za-z0-9_-]+$ ]] || die "name '$1': only letters, digits, '-' and '_'"
}

# The hierarchies systemd uses: cgroup2 wherever it is mounted, and the v1
# name=systemd one on hybrid hosts. Prints one cgroup directory per line for
# a manager called $1, beside this shell's own cgroup.
cgroup_dirs() {
	local own2 own1
	own2=$(awk -F: '$1 == "0" && $2 == "" {print $3}' /proc/self/cgroup)
	own1=$(awk -F: '$2 ~ /(^|,)name=systemd(,|$)/ {print $3}' /proc/self/cgroup)
	awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { print $(i+1), $5, $(i+3) } }' /proc/self/mountinfo |
		while read -r fstype mnt opts; do
			if [ "$fstype" = cgroup2 ] && [ -n "$own2" ]; then
				echo "$mnt${own2%/}/fleet-sdt-$1"
			elif [ "$fstype" = cgroup ] && [[ ,$opts, == *,name=systemd,* ]] && [ -n "$own1" ]; then
				echo "$mnt${own1%/}/fleet-sdt-$1"
			fi
		done
}

print_env() {
	local d; d=$(dir_of "$1")
	[ -f "$d/pid" ] || die "no manager called $1"
	echo "export XDG_RUNTIME_DIR=$d"
	echo "# private socket: $d/systemd/private; pid $(cat "$d/pid"); log: $d/manager.log"
}

start() {
	local name=$1 machine_id=${2:-} d
	check_name "$name"
	[ "$(id -u)" = 0 ] || die "needs root"
	[ -x "$SYSTEMD" ] || die "no systemd binary at $SYSTEMD"
	d=$(dir_of "$name")
	[ -e "$d" ] && die "$d exists: stop $name first"
	mkdir -m 0700 -p "$d/home"
	local cgs=()
	mapfile -t cgs < <(cgroup_dirs "$name")
	[ ${#cgs[@]} -gt 0 ] || die "no cgroup2 or name=systemd hierarchy mounted"
	printf '%s\n' "${cgs[@]}" > "$d/cgroups"
	for cg in "${cgs[@]}"; do mkdir -p "$cg"; done
	if [ -n "$machine_id" ]; then
		[[ $machine_id =~ ^[0-9a-f]{32}$ ]] || die "machine ID must be 32 lowercase hex digits"
		echo "$machine_id" > "$d/machine-id"
	fi
	# The launcher records its PID and joins the cgroups; every exec after that
	# keeps the PID, so the PID recorded is the manager's.
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		HOME="$d/home" XDG_RUNTIME_DIR="$d" XDG_CONFIG_HOME="$d/home/.config" \
		XDG_DATA_HOME="$d/home/.local/share" XDG_STATE_HOME="$d/home/.local/state" \
		XDG_CACHE_HOME="$d/home/.cache" SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=notice \
		MID_FILE="${machine_id:+$d/machine-id}" BIN="$SYSTEMD" PIDFILE="$d/pid" \
		setsid /bin/sh -c '
			echo $$ > "$PIDFILE"; unset PIDFILE
			for procs in "$@"; do echo $$ > "$procs/cgroup.procs"; done
			exec unshare --mount --propagation private /bin/sh -ec "
				mount -t tmpfs -o mode=0755 tmpfs /run
				mkdir -p /run/systemd/system
				if [ -n \"\$MID_FILE\" ]; then mount --bind \"\$MID_FILE\" /etc/machine-id; fi
				bin=\$BIN; unset MID_FILE BIN
				exec \"\$bin\" --user"' launcher "${cgs[@]}" \
		> "$d/manager.log" 2>&1 < /dev/null &
	for _ in $(seq 200); do
		if [ -S "$d/systemd/private" ] && XDG_RUNTIME_DIR=$d systemctl --user show -p Version > /dev/null 2>&1; then
			print_env "$name"
			return 0
		fi
		[ ! -f "$d/pid" ] || kill -0 "$(cat "$d/pid")" 2> /dev/null || { tail -20 "$d/manager.log" >&2; stop "$name"; die "manager exited"; }
		sleep 0.05
	done
	stop "$name"
	die "manager did not answer within 10s"
}

# Every process in the manager's cgroups, one per line.
cgroup_pids() {
	local cg
	while read -r cg; do
		[ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2> /dev/null
	done < "$1/cgroups"
}

stop() {
	local name=$1 d pid
	check_name "$name"
	d=$(dir_of "$name")
	[ -d "$d" ] || die "no manager called $name"
	if [ -f "$d/pid" ]; then
		pid=$(cat "$d/pid")
		# Only signal it while it is still in its own cgroup: it is ours then.
		if cgroup_pids "$d" | grep -qx "$pid"; then
			kill -TERM "$pid" 2> /dev/null || true
			for _ in $(seq 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.05; done
		fi
	fi
	if [ -f "$d/cgroups" ]; then
		for _ in $(seq 100); do
			pids=$(cgroup_pids "$d")
			[ -z "$pids" ] && break
			# shellcheck disable=SC2086 # one PID per word
			kill -KILL $pids 2> /dev/null || true
			sleep 0.05
		done
		while read -r cg; do
			[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \;
		done < "$d/cgroups"
	fi
	rm -rf "$d"
}

list() {
	for d in "$BASE"/fleet-sdt-*; do
		[ -f "$d/pid" ] && echo "${d##*/fleet-sdt-} pid $(cat "$d/pid") XDG_RUNTIME_DIR=$d"
	done
	return 0
}

case ${1:-} in
start) [ $# -ge 2 ] || die "usage: start NAME [MACHINE_ID]"; start "$2" "${3:-}" ;;
stop) [ $# -eq 2 ] || die "usage: stop NAME"; stop "$2" ;;
env) [ $# -eq 2 ] || die "usage: env NAME"; print_env "$2" ;;
list) list ;;
*) die "usage: $0 start NAME [MACHINE_ID] | stop NAME | env NAME | list" ;;
esac
