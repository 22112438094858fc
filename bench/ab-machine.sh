#!/usr/bin/env bash
# bench/ab-machine.sh: two acceptd builds and haproxy side by side on short
# relayed connections, measured over the whole machine: conn/s, CPU time
# of all processes (/proc/stat: user+nice+system+irq+softirq) and context
# switches (/proc/stat ctxt) per connection. On a 2-CPU machine that also
# runs the load generator and the backend, a relay that wakes them more
# often costs their CPU too; this shows it where bench/cpu-relay.sh (the
# relay's own CPU) does not. Rounds alternate A, B, haproxy.
#
# Usage: bench/ab-machine.sh A_ACCEPTD B_ACCEPTD
# Environment: KIND (tcp or unix backend; unix), ROUNDS (8), N (10000).
# Prints one line per round, then the medians. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
KIND=${KIND:-unix}
ROUNDS=${ROUNDS:-8}
N=${N:-10000}

. bench/lib.sh
need ab-machine.sh go haproxy
bench_tmp abmachine
relay_backend 4
backend=$BT
[ "$KIND" = unix ] && backend=$BU

names=(A B haproxy)
addrs=()
for i in 1 2; do
	"${!i}" proxy -c 30000 -listen "127.0.0.1:${P[$i]}" "$backend" 2>/dev/null &
	pids+=($!)
	addrs+=("127.0.0.1:${P[$i]}")
done
haproxy_cfg "$tmp/haproxy.cfg" 9000 "${P[3]}" "$BT" "${P[3]}" "$BU"
# One frontend: the backend kind asked for.
if [ "$KIND" = unix ]; then
	sed -i '/^frontend ft_tcp/,/^\tserver s1/d' "$tmp/haproxy.cfg"
else
	sed -i '/^frontend ft_unix/,/^\tserver s1/d' "$tmp/haproxy.cfg"
fi
haproxy -db -f "$tmp/haproxy.cfg" 2>/dev/null &
pids+=($!)
addrs+=("127.0.0.1:${P[3]}")
"$LG" waitport -max 15s "${addrs[@]}"

busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
ctxt() { awk '/^ctxt/{print $2}' /proc/stat; }
hz=$(getconf CLK_TCK)
for a in "${addrs[@]}"; do "$LG" conn -addr "$a" -n 2000 -c 64 -send 64 -expect 64 >/dev/null; done
raw=$tmp/raw
for r in $(seq 1 "$ROUNDS"); do
	for k in 0 1 2; do
		b0=$(busy) c0=$(ctxt)
		out=$("$LG" conn -addr "${addrs[$k]}" -n "$N" -c 64 -send 64 -expect 64 -max 60s)
		b1=$(busy) c1=$(ctxt)
		rate=$(grep -o 'rate=[0-9]*' <<<"$out" | cut -d= -f2)
		awk -v n="${names[$k]}" -v r="$r" -v rate="$rate" -v b="$((b1 - b0))" -v c="$((c1 - c0))" -v N="$N" -v hz="$hz" \
			'BEGIN {printf "%s round=%s conn/s=%s machine_cpu_us/conn=%.0f ctxt/conn=%.2f\n", n, r, rate, b * 1e6 / hz / N, c / N}' | tee -a "$raw"
	done
done
echo "# medians of $ROUNDS ($KIND backend, $N connections at 64 clients, 64 B each way)"
for n in "${names[@]}"; do
	awk -v n="$n" '$1 == n {for (i = 3; i <= NF; i++) {split($i, kv, "="); v[i] = v[i] " " kv[2]; k[i] = kv[1]}}
	END {
		line = n
		for (i = 3; i in v; i++) {
			m = split(v[i], a, " ")
			for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
			line = line " " k[i] "=" a[int((m + 1) / 2)]
		}
		print line
	}' "$raw"
done
