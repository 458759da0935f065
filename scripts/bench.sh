#!/usr/bin/env bash
# Measures whistle end to end and beside its baselines; see BENCHMARKS.md.
#
#   scripts/bench.sh [--quick] [--fsync always|interval] [--peer]
#                    [--concurrency N] [--rate N] [--compare-group-commit] [--profile DIR]
#   scripts/bench.sh --grow [10000,100000]     cost of open cases
#   scripts/bench.sh --replay [1000000]        replay of a log of that many events
#   scripts/bench.sh --restart [500000]        cold and warm restart over a log of that many events
#   scripts/bench.sh --store --peer [--rounds N]  Store.Append against PostgreSQL
#
# WHISTLED_BIN=path runs that whistled binary instead of building one (to
# measure another commit's with this script).
#
# It builds whistled and the load generator (scripts/bench/loadgen), starts
# whistled on its embedded defaults (fsync on every commit unless --fsync
# interval) in a temporary data folder on a free loopback port, and drives it
# with concurrent street clients raising whistles and department clients
# following their queues and reporting in. Then it replays the run's log and
# runs the raw JetStream baseline on an embedded server configured like
# whistled's, at the same concurrency and message size. --quick takes under a
# minute once built. --peer also starts a PostgreSQL (Debian's package,
# installed with apt-get when missing) in a temporary folder on a free port
# and measures its durable appends at the same concurrency.
#
# --store --peer measures whistle's event store alone (Store.Append on the
# packed log, on an embedded server as whistled has it) against the
# PostgreSQL peer, the same ~1.9 KB commit of a new case at 16 and 64
# appenders, in alternated rounds (default 3); its last line is
#   store: appends_c16=N appends_c64=N peer_c16=N peer_c64=N fsync=always
# (medians).
#
# --rate N sets the fixed-rate phase's whistles/s (default 1000, capped at
# 80 % of what the saturation phase reached), to time delivery of two builds
# at one rate.
#
# The last line is:
#   bench: whistles_per_s=N raw_appends_per_s=N ratio=R dispatch_p99_ms=X replay_events_per_s=N rss_mb=N fsync=always cpu_ms_per_whistle=X
# (cpu_ms_per_whistle: whistled's utime+stime from /proc/<pid>/stat over
# the saturation phase, divided by the whistles raised in it)
set -euo pipefail

cd "$(dirname "$0")/.."

mode=bench
quick=false
fsync=always
peer=false
concurrency=16
extra=()
grow=10000,100000
events=1000000
restart_events=500000
rounds=3

while [[ $# -gt 0 ]]; do
	case "$1" in
	--quick) quick=true ;;
	--fsync) fsync="${2:?--fsync needs always or interval}"; shift ;;
	--fsync=*) fsync="${1#*=}" ;;
	--peer) peer=true ;;
	--concurrency) concurrency="${2:?--concurrency needs a number}"; shift ;;
	--rate) extra+=(-rate "${2:?--rate needs whistles per second}"); shift ;;
	--compare-group-commit) extra+=(-compare-group-commit) ;;
	--profile) mkdir -p "${2:?--profile needs a folder}"; extra+=(-profile "$(cd "$2" && pwd)"); shift ;;
	--grow)
		mode=grow
		if [[ $# -gt 1 && "$2" =~ ^[0-9,]+$ ]]; then grow="$2"; shift; fi
		;;
	--store) mode=store ;;
	--rounds) rounds="${2:?--rounds needs a number}"; shift ;;
	--replay)
		mode=replay
		if [[ $# -gt 1 && "$2" =~ ^[0-9]+$ ]]; then events="$2"; shift; fi
		;;
	--restart)
		mode=restart
		if [[ $# -gt 1 && "$2" =~ ^[0-9]+$ ]]; then restart_events="$2"; shift; fi
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bench.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done
case "$fsync" in always | interval) ;; *)
	echo "bench.sh: --fsync $fsync: want always or interval" >&2
	exit 2
	;;
esac

work="$(mktemp -d "${TMPDIR:-/tmp}/whistle-bench.XXXXXX")"
pg_ctl_bin=""
pgdata=""
cleanup() {
	if [[ -n "$pg_ctl_bin" && -n "$pgdata" ]]; then
		as_postgres "$pg_ctl_bin" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "bench.sh: building whistled and the load generator" >&2
if [[ -n "${WHISTLED_BIN:-}" ]]; then
	cp "$WHISTLED_BIN" "$work/whistled"
else
	go build -o "$work/whistled" ./cmd/whistled
fi
go build -o "$work/loadgen" ./scripts/bench/loadgen

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_postgres() {
	if [[ "$(id -u)" -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

start_postgres() {
	local bin
	bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
	if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
		echo "bench.sh: installing PostgreSQL from Debian's packages" >&2
		if [[ "$(id -u)" -ne 0 ]]; then
			echo "bench.sh: --peer needs PostgreSQL (apt-get install postgresql) and this is not root" >&2
			exit 1
		fi
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
		bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
	fi
	local dir="$work/pg"
	mkdir -p "$dir"
	if [[ "$(id -u)" -eq 0 ]]; then
		chown postgres "$work" "$dir"
		chmod 0755 "$work"
	fi
	pgdata="$dir/data"
	local port
	port="$("$work/loadgen" -mode freeport)"
	as_postgres "$bin/initdb" -D "$pgdata" -A trust -U whistle --no-instructions >"$dir/initdb.log"
	# Durability as the comparison needs it: every commit flushed (fsync,
	# synchronous_commit on, full page writes), the server's own group
	# commit left at its defaults.
	pg_ctl_bin="$bin/pg_ctl"
	as_postgres "$bin/pg_ctl" -D "$pgdata" -l "$dir/server.log" -w \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200" \
		start >/dev/null
	echo "bench.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
	peer_dsn="postgres://whistle@127.0.0.1:$port/postgres?sslmode=disable"
}

case "$mode" in
grow)
	"$work/loadgen" -mode grow -whistled "$work/whistled" -fsync "$fsync" -concurrency "$concurrency" -grow "$grow" ${extra[@]+"${extra[@]}"}
	exit
	;;
restart)
	# --rate N sets the fixed-rate phase's whistles/s (default 1000, capped at
# 80 % of what the saturation phase reached), to time delivery of two builds
# at one rate.
#
# The last line is:
	#   restart: events=N cold_ready_s=X warm_ready_s=Y
	"$work/loadgen" -mode restart -whistled "$work/whistled" -fsync interval -concurrency "$concurrency" -events "$restart_events"
	exit
	;;
store)
	if ! $peer; then
		echo "bench.sh: --store compares with the PostgreSQL peer: add --peer" >&2
		exit 2
	fi
	start_postgres
	"$work/loadgen" -mode store -fsync "$fsync" -peer-dsn "$peer_dsn" -raw-duration 5s -rounds "$rounds"
	exit
	;;
replay)
	"$work/loadgen" -mode replay -fsync interval -concurrency "$concurrency" -events "$events"
	exit
	;;
esac

if $quick; then
	timing=(-warmup 1s -duration 8s -rate-duration 6s -raw-duration 4s -settle 5s)
else
	timing=(-warmup 3s -duration 30s -rate-duration 20s -raw-duration 15s -settle 20s)
fi
if $peer; then
	start_postgres
	extra+=(-peer-dsn "$peer_dsn")
fi
"$work/loadgen" -mode bench -whistled "$work/whistled" -fsync "$fsync" -concurrency "$concurrency" \
	"${timing[@]}" ${extra[@]+"${extra[@]}"}
