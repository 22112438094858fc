#!/usr/bin/env bash
# bench/cpu-relay.sh: CPU time per short relayed connection of acceptd
# builds and haproxy, side by side: user + system time of each relay
# process (/proc/PID/stat) before and after one loadgen run of N
# connections (64 at a time, 64 B each way), rounds alternating between
# the relays. Less noisy than connections/s on a machine that also runs
# the load generator and the backend.
#
# Usage: bench/cpu-relay.sh ACCEPTD...
# Environment: KIND (tcp or unix backend; tcp), N (8000), ROUNDS (3).
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
KIND=${KIND:-tcp}
N=${N:-8000}
ROUNDS=${ROUNDS:-3}

. bench/lib.sh
need cpu-relay.sh go haproxy
bench_tmp cpurelay
relay_backend $(($# + 3))
backend=$BT
[ "$KIND" = unix ] && backend=$BU

names=() addrs=() rpids=()
i=1
for bin in "$@"; do
	"$bin" proxy -c 30000 -listen "127.0.0.1:${P[$i]}" "$backend" 2>/dev/null &
	pids+=($!); rpids+=($!); names+=("acceptd:$bin"); addrs+=("127.0.0.1:${P[$i]}")
	i=$((i + 1))
done
haproxy_cfg "$tmp/haproxy.cfg" 9000 "${P[$i]}" "$BT" "${P[$((i + 1))]}" "$BU"
haproxy -db -f "$tmp/haproxy.cfg" 2>/dev/null &
pids+=($!); rpids+=($!); names+=(haproxy)
if [ "$KIND" = unix ]; then addrs+=("127.0.0.1:${P[$((i + 1))]}"); else addrs+=("127.0.0.1:${P[$i]}"); fi
"$LG" waitport -max 15s "${addrs[@]}"

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for a in "${addrs[@]}"; do "$LG" conn -addr "$a" -n 2000 -c 64 -send 64 -expect 64 >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
	for k in "${!addrs[@]}"; do
		t0=$(cpu "${rpids[$k]}")
		out=$("$LG" conn -addr "${addrs[$k]}" -n "$N" -c 64 -send 64 -expect 64 -max 60s)
		t1=$(cpu "${rpids[$k]}")
		echo "round $r ${names[$k]} $KIND cpu_us_per_conn=$(((t1 - t0) * 1000000 / ticks / N)) $out"
	done
done
