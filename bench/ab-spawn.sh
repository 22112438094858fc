#!/usr/bin/env bash
# bench/ab-spawn.sh: two acceptd builds and tcpserver side by side, with
# each server's own CPU and voluntary context switches per connection,
# for deciding whether a change to the spawn path is worth keeping.
#
# Usage: bench/ab-spawn.sh OLD_ACCEPTD NEW_ACCEPTD
#   e.g. git stash; go build -o /tmp/old ./cmd/acceptd; git stash pop;
#        go build -o /tmp/new ./cmd/acceptd; bench/ab-spawn.sh /tmp/old /tmp/new
# Environment: N (connections per point, 2000), REPS (3), CONCS ("1 8 64").
#
# CPU is the sum of /proc/PID/task/*/schedstat run time over the server's
# threads (not its children), read around each point; switches likewise
# from voluntary_ctxt_switches. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
OLD=$1 NEW=$2
N=${N:-2000}
REPS=${REPS:-3}
CONCS=${CONCS:-"1 8 64"}

. bench/lib.sh
need ab-spawn.sh go gcc tcpserver
bench_tmp ab

go build -o "$tmp/loadgen" ./bench/cmd/loadgen
printf '#include <unistd.h>\nint main(void){return write(1,"hello\\n",6)!=6;}\n' >"$tmp/hello.c"
gcc -static -O2 -o "$tmp/hello" "$tmp/hello.c"
LG=$tmp/loadgen
mapfile -t P < <("$LG" freeport -n 3)

"$OLD" exec -listen "127.0.0.1:${P[0]}" -max-connections 1000 -- "$tmp/hello" 2>/dev/null &
pids+=($!)
"$NEW" exec -listen "127.0.0.1:${P[1]}" -max-connections 1000 -- "$tmp/hello" 2>/dev/null &
pids+=($!)
tcpserver -H -R -l 0 -c 1000 -b 1024 127.0.0.1 "${P[2]}" "$tmp/hello" 2>/dev/null &
pids+=($!)
names=(old new tcpserver)
"$LG" waitport -max 15s "127.0.0.1:${P[0]}" "127.0.0.1:${P[1]}" "127.0.0.1:${P[2]}"

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
switches() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }

for rep in $(seq 1 "$REPS"); do
	for c in $CONCS; do
		for i in 0 1 2; do
			pid=${pids[$i]}
			c0=$(cpu_ns "$pid") s0=$(switches "$pid")
			line=$("$LG" conn -addr "127.0.0.1:${P[$i]}" -n "$N" -c "$c" -max 30s)
			c1=$(cpu_ns "$pid") s1=$(switches "$pid")
			rate=$(grep -o 'rate=[0-9]*' <<<"$line" | cut -d= -f2)
			p99=$(grep -o 'p99_us=[0-9]*' <<<"$line" | cut -d= -f2)
			awk -v n="${names[$i]}" -v c="$c" -v r="$rep" -v rate="$rate" -v p99="$p99" \
				-v cpu=$((c1 - c0)) -v sw=$((s1 - s0)) -v N="$N" \
				'BEGIN {printf "%-9s c=%-3s rep=%s conn/s=%-6s p99_ms=%-7.2f cpu_us/conn=%-5.0f switches/conn=%.2f\n", n, c, r, rate, p99 / 1000, cpu / N / 1000, sw / N}'
		done
	done
done | sort -s -k2,2 -k1,1
