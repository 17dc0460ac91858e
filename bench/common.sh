# common.sh: what the bench/ scripts share: prerequisites, the signed fixture,
# one private PostgreSQL cluster, starting and stopping servers, and cleanup on exit.
# Sourced (not run) by scripts that have already `set -euo pipefail`.
# shellcheck shell=bash

SECRET="It's a Secret to Everybody"   # the public test secret the fixture is signed with
PY=/usr/bin/python3                   # Debian's python, home of python3-flask/-psycopg2/gunicorn
bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$bench")
me=$(basename "$0")

die() { echo "$me: $*" >&2; exit 1; }

# need TOOL...: installing is scripts/install-deps' job, not ours.
need() {
	local missing='' t
	for t in "$@"; do
		case $t in
		flask) "$PY" -c 'import flask, psycopg2, gunicorn' 2>/dev/null || missing="$missing gunicorn/flask/psycopg2" ;;
		libpq) pkg-config --exists libpq 2>/dev/null || missing="$missing libpq-dev" ;;
		postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql" ;;
		*) command -v "$t" >/dev/null || missing="$missing $t" ;;
		esac
	done
	[ -z "$missing" ] || die "missing:$missing; run scripts/install-deps bench"
}

# The fixture: a real 8.8 KB GitHub push, its signature a real HMAC over the exact bytes.
fixture=$root/tests/fixtures/github/push.branch.one-commit
[ -f "$fixture.json" ] || fixture=$bench/data/push.branch.one-commit
body=$fixture.json
sig=$(sed -n 's/^X-Hub-Signature-256: sha256=\([0-9a-f]*\).*/\1/p' "$fixture.headers")
check_fixture() {   # else every answer would be a 401 and the run would measure nothing
	"$PY" - "$body" "$sig" "$SECRET" <<'EOF' || die "fixture signature does not verify"
import hashlib, hmac, sys
body = open(sys.argv[1], "rb").read()
sys.exit(hmac.new(sys.argv[3].encode(), body, hashlib.sha256).hexdigest() != sys.argv[2])
EOF
}

# build_daemon LOG: make, unless SKIP_MAKE=1 (use build/doraloopd as is) or DORALOOPD names
# the binary to measure (another commit's, for a before/after: bench/upkeep).
build_daemon() {
	local bin=${DORALOOPD:-$root/build/doraloopd}
	if [ "${SKIP_MAKE:-0}" != 1 ] && [ -z "${DORALOOPD:-}" ]; then
		make -C "$root" >"$1" 2>&1 || die "make failed, see $1"
	fi
	[ -x "$bin" ] || die "no $bin (run make)"
	# Run a private copy: a rebuild during the runs (the tree is shared) must not swap the
	# binary between repetitions. Migrations are compiled in, so the copy is complete.
	daemon=$tmp/doraloopd
	cp -p "$bin" "$daemon"
}

# --- processes and the cluster, all removed on exit whatever happens ---
tmp=$(mktemp -d /tmp/doraloop-bench.XXXXXX)
chmod 755 "$tmp"   # the postgres user must reach its cluster inside
server_pid=
server_status=
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }   # a zombie is not alive
stop_server() {   # TERM, up to 15 s to drain, then KILL; sets server_status
	local pid=$server_pid i
	server_status=
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; server_status=killed; fi
	wait "$pid" 2>/dev/null && server_status=${server_status:-0} || server_status=${server_status:-$?}
	server_pid=
}
cleanup() {
	stop_server || true
	"$root/scripts/pgtmp" destroy "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "$me: failed at line $LINENO: $BASH_COMMAND" >&2' ERR   # set -e is silent otherwise
trap 'exit 130' INT TERM

psql() { PGOPTIONS='-c client_min_messages=warning' command psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# start_cluster [SETTING=VALUE...]: one private cluster with the defaults (fsync=on,
# synchronous_commit=on) unless told otherwise.
start_cluster() { admin=$("$root/scripts/pgtmp" start "$tmp/pg" "$@"); }

# fresh_db NAME -> its conninfo. A fresh database per run: every run starts from an empty
# table, and the checkpoint keeps one run's dirty pages from being flushed during the next.
fresh_db() {
	psql "$admin" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" -c CHECKPOINT >/dev/null
	echo "${admin/dbname=postgres/dbname=$1}"
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() {   # wait_http PORT PATH LOG: up to 60 s for any HTTP answer from server_pid
	local i
	for ((i = 0; i < 600; i++)); do
		alive "$server_pid" || { tail -n 20 "$3" >&2; die "server exited during start-up, see $3"; }
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1$2")" != 000 ] && return 0
		sleep 0.1
	done
	die "server did not answer on port $1 within 60 s, see $3"
}

# start_daemon PORT CONNINFO LOG [WRAPPER...]: doraloopd as the issue runs it.
start_daemon() {
	local port=$1 db=$2 log=$3
	shift 3
	mkdir -p "$tmp/spool-$port"
	DORALOOP_GITHUB_SECRET=$SECRET "$@" "${daemon:-$root/build/doraloopd}" --listen "127.0.0.1:$port" \
		--db "$db" --spool-dir "$tmp/spool-$port" >"$log" 2>&1 &
	server_pid=$!
	wait_http "$port" /healthz "$log"
}

post_once() {   # post_once PORT DELIVERY_ID -> "STATUS BODY"
	local code
	code=$(curl -s --max-time 10 -o "$tmp/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
		-H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $2" -H "X-Hub-Signature-256: sha256=$sig" \
		--data-binary "@$body" "http://127.0.0.1:$1/hooks/github") || true
	echo "$code $(tr -d '\n' <"$tmp/answer" 2>/dev/null | head -c 300)"
}

# run_wrk PORT OUT: the load, the same for every HTTP contender.
run_wrk() {
	wrk -t"${WRK_THREADS:-2}" -c"$CONNS" -d"${DURATION}s" --timeout 30s --latency \
		-s "$bench/wrk/github_push.lua" "http://127.0.0.1:$1/hooks/github" \
		-- "$body" "$sig" "$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')" >>"$2" 2>&1 ||
		echo "$me: wrk exited with $?, see $2" >&2
}

# The machine is shared: other people's builds and tests take CPU during a run. A snapshot
# "TIME ALL OURS" sums user+system CPU (children reaped included, so it is conserved when a
# process exits) over every process, and over ours (this shell's descendants and our
# cluster's); foreign_cpu A B turns two snapshots into the share of the 2 CPUs others used,
# per_cpu_second into a rate per CPU-second the benchmark itself used (wrk, server, postgres),
# a figure that other people's load changes much less than the rate per second.
cpu_snapshot() {
	local pm
	pm=$(head -n 1 "$tmp/pg/data/postmaster.pid" 2>/dev/null || echo 0)
	# Processes come and go while cat reads them: that is not a failure.
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v me=$$ -v pm="$pm" -v now="$(date +%s.%N)" '
	{
		pid = $1; sub(/^.*\) /, "")   # the command name may hold spaces
		parent[pid] = $2; cpu[pid] = $12 + $13 + $14 + $15; all += cpu[pid]
	}
	END {
		for (p in cpu) {
			for (q = p; q > 1 && q != me && q != pm; q = parent[q]) if (!(q in parent)) break
			if (q == me || q == pm) ours += cpu[p]
		}
		print now, all, ours
	}'
}
foreign_cpu() {   # foreign_cpu "SNAPSHOT_BEFORE" "SNAPSHOT_AFTER" -> percent of all CPUs
	echo "$1 $2" | awk -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
		'{ printf "%.0f", 100 * (($5 - $2) - ($6 - $3)) / hz / (($4 - $1) * n) }'
}

per_cpu_second() {   # per_cpu_second COUNT BEFORE AFTER -> COUNT per CPU-second of ours
	echo "$1 $2 $3" | awk -v hz="$(getconf CLK_TCK)" \
		'{ printf "%.0f", (($7 - $4) > 0 ? $1 / (($7 - $4) / hz) : 0) }'
}

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" "$2" | head -n 1; }   # field KEY FILE
