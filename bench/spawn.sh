#!/usr/bin/env bash
# bench/spawn.sh: connections/s and p50/p99 latency of a tiny static
# per-connection program (writes one line, exits) under acceptd and its
# peers, side by side on loopback in one run (issue 2, "Speed").
#
# Usage: bench/spawn.sh [OUT]        (default OUT: bench/results/spawn-DATE.txt)
# Environment: N (connections per point, 3000), REPS (3; the table shows
# medians), CONCS ("1 8 64"), MAXSECS (bound per point, 15).
#
# Every server runs for the whole script; the points are measured in turn,
# round-robin over the servers for each repetition, so that a change in the
# machine's load hits every server alike. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-3000}
REPS=${REPS:-3}
CONCS=${CONCS:-"1 8 64"}
MAXSECS=${MAXSECS:-15}
OUT=${1:-bench/results/spawn-$(date +%Y-%m-%d).txt}

. bench/lib.sh
bench_tmp spawn

need spawn.sh go gcc xinetd tcpserver socat systemd-socket-activate

echo "building acceptd, loadgen and the per-connection program in $tmp" >&2
go build -o "$tmp/acceptd" ./cmd/acceptd
go build -o "$tmp/loadgen" ./bench/cmd/loadgen
cat >"$tmp/hello.c" <<'EOF'
#include <unistd.h>
int main(void) {
	static const char msg[] = "hello\n";
	return write(1, msg, sizeof msg - 1) == sizeof msg - 1 ? 0 : 1;
}
EOF
gcc -static -O2 -o "$tmp/hello" "$tmp/hello.c"
HELLO=$tmp/hello
LG=$tmp/loadgen

mapfile -t P < <("$LG" freeport -n 7)

# acceptd run: two services in one daemon, stderr = "null" and the default
# "log"; both log one line per connection at level info (to /dev/null).
cat >"$tmp/acceptd.hcl" <<EOF
control {
  socket = "$tmp/control.sock"
}
service "null" {
  listen          = ["127.0.0.1:${P[0]}"]
  max_connections = 1000
  exec {
    command = ["$HELLO"]
    stderr  = "null"
  }
}
service "log" {
  listen          = ["127.0.0.1:${P[1]}"]
  max_connections = 1000
  exec {
    command = ["$HELLO"]
  }
}
EOF
"$tmp/acceptd" run -config "$tmp/acceptd.hcl" 2>/dev/null &
pids+=($!)
ACCEPTD_RUN_PID=$!
"$tmp/acceptd" exec -listen "127.0.0.1:${P[2]}" -max-connections 1000 -- "$HELLO" 2>/dev/null &
pids+=($!)

# xinetd: no rate limit (cps default is 50/s then 10 s off), no instance
# cap, no libwrap lookup and no per-connection log, as tcpserver -H -R -l 0.
cat >"$tmp/xinetd.conf" <<EOF
defaults
{
	instances      = UNLIMITED
	per_source     = UNLIMITED
	cps            = 1000000 1
	log_type       = FILE $tmp/xinetd.log
	log_on_success =
	log_on_failure =
}
service acdbench
{
	type        = UNLISTED
	id          = acdbench
	socket_type = stream
	protocol    = tcp
	bind        = 127.0.0.1
	port        = ${P[3]}
	wait        = no
	user        = root
	server      = $HELLO
	flags       = NOLIBWRAP REUSE
	instances   = UNLIMITED
	per_source  = UNLIMITED
	cps         = 1000000 1
}
EOF
xinetd -dontfork -pidfile "$tmp/xinetd.pid" -f "$tmp/xinetd.conf" 2>/dev/null &
pids+=($!)
# -b 1024: tcpserver's default backlog of 20 drops SYNs at concurrency 64,
# which would measure the backlog, not the spawn.
tcpserver -H -R -l 0 -c 1000 -b 1024 127.0.0.1 "${P[4]}" "$HELLO" 2>/dev/null &
pids+=($!)
systemd-socket-activate --accept --inetd -l "127.0.0.1:${P[5]}" "$HELLO" 2>/dev/null &
pids+=($!)
socat "TCP-LISTEN:${P[6]},bind=127.0.0.1,fork,reuseaddr,backlog=1024" "EXEC:$HELLO" 2>/dev/null &
pids+=($!)

names=(acceptd-run-null acceptd-run-log acceptd-exec xinetd tcpserver socket-activate socat)
addrs=()
for p in "${P[@]}"; do addrs+=("127.0.0.1:$p"); done
"$LG" waitport -max 15s "${addrs[@]}"

raw=$tmp/raw
: >"$raw"
for rep in $(seq 1 "$REPS"); do
	for c in $CONCS; do
		for i in "${!names[@]}"; do
			line=$(timeout $((MAXSECS + 30)) "$LG" conn -addr "${addrs[$i]}" -n "$N" -c "$c" -max "${MAXSECS}s" 2>>"$tmp/errors" || echo "ok=0 err=-1 secs=0 rate=0 p50_us=0 p99_us=0")
			echo "${names[$i]} $c $rep $line" >>"$raw"
			echo "rep $rep c=$c ${names[$i]}: $line" >&2
		done
	done
done

{
	echo "# bench/spawn.sh $(date -Iseconds)"
	echo "# acceptd $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server spawn cmd || echo '+dirty'); $(go version | cut -d' ' -f3); kernel $(uname -r); $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# program: static C, writes 'hello\\n' and exits; N=$N connections per point, median of $REPS runs, loopback"
	echo "# peers: tcpserver -H -R -l 0 -c 1000 -b 1024; xinetd (cps/instances unlimited, NOLIBWRAP, no log);"
	echo "#        systemd-socket-activate --accept --inetd; socat TCP-LISTEN:..,fork EXEC:prog; acceptd max_connections 1000"
	echo "# ratio = conn/s / tcpserver's conn/s at the same concurrency (medians of the runs);"
	echo "# paired = median over the runs of conn/s / tcpserver's conn/s in the same run (seconds apart):"
	echo "#          the machine's load drifts between runs, and a ratio within one run cancels the drift"
	echo
	awk '
	function median(s,   a, n, i, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (t = i + 1; t <= n; t++) if (a[t] + 0 < a[i] + 0) { x = a[i]; a[i] = a[t]; a[t] = x }
		return a[int((n + 1) / 2)]
	}
	{
		key = $1 " " $2
		if (!(key in seen)) { seen[key] = 1; order[++k] = key }
		for (f = 4; f <= NF; f++) { split($f, kv, "="); v[key, kv[1]] = v[key, kv[1]] " " kv[2]; if (kv[1] == "rate") rate[$1, $2, $3] = kv[2] }
		if (!($3 in rseen)) { rseen[$3] = 1; reps[++nr] = $3 }
		if (!($2 in cseen)) { cseen[$2] = 1; concs[++nc] = $2 }
	}
	END {
		printf "%-18s %4s %10s %7s %7s %9s %9s %6s\n", "server", "conc", "conn/s", "ratio", "paired", "p50_ms", "p99_ms", "errors"
		for (j = 1; j <= nc; j++) {
			c = concs[j]
			base = median(v["tcpserver " c, "rate"])
			for (i = 1; i <= k; i++) {
				split(order[i], kc, " ")
				if (kc[2] != c) continue
				key = order[i]
				r = median(v[key, "rate"])
				errs = 0; n = split(v[key, "err"], e, " "); for (t = 1; t <= n; t++) errs += e[t]
				pr = ""
				for (t = 1; t <= nr; t++) if (rate["tcpserver", c, reps[t]] > 0) pr = pr " " rate[kc[1], c, reps[t]] / rate["tcpserver", c, reps[t]]
				printf "%-18s %4s %10.0f %7.2f %7.2f %9.2f %9.2f %6d\n", kc[1], c, r, (base > 0 ? r / base : 0), median(pr), median(v[key, "p50_us"]) / 1000, median(v[key, "p99_us"]) / 1000, errs
			}
			print ""
		}
	}' "$raw"
	echo "# raw: server conc rep result"
	sed 's/^/# /' "$raw"
	error_summary "$tmp/errors"
} | tee "$OUT"
echo "wrote $OUT" >&2
