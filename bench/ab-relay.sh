#!/usr/bin/env bash
# bench/ab-relay.sh: two acceptd builds side by side with
# systemd-socket-proxyd and haproxy, for deciding whether a change to the
# relay path is worth keeping: bulk upload (1 stream, TCP and UNIX
# backends) and short connections at 64 clients.
#
# Usage: bench/ab-relay.sh OLD_ACCEPTD NEW_ACCEPTD
# Environment: REPS (5), SECS (bulk seconds per point, 1.5), SHORTN (5000),
# STREAMS (1).
#
# Prints one line per point and, last, the median of each. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
OLD=$1 NEW=$2
REPS=${REPS:-5}
SECS=${SECS:-1.5}
SHORTN=${SHORTN:-5000}
STREAMS=${STREAMS:-1}
PROXYD=/lib/systemd/systemd-socket-proxyd

. bench/lib.sh
need ab-relay.sh go haproxy systemd-socket-activate "$PROXYD"
bench_tmp abrelay

relay_backend 9

declare -A ADDR
names=(old new socket-proxyd haproxy)
i=1
for bin in "$OLD" "$NEW"; do
	n=${names[$((i / 2))]}
	"$bin" proxy -c 30000 -listen "127.0.0.1:${P[$i]}" "$BT" 2>/dev/null &
	pids+=($!); ADDR[$n,tcp]=127.0.0.1:${P[$i]}
	"$bin" proxy -c 30000 -listen "127.0.0.1:${P[$((i + 1))]}" "$BU" 2>/dev/null &
	pids+=($!); ADDR[$n,unix]=127.0.0.1:${P[$((i + 1))]}
	i=$((i + 2))
done
systemd-socket-activate -l "127.0.0.1:${P[5]}" "$PROXYD" -c 30000 "$BT" 2>/dev/null &
pids+=($!); ADDR[socket-proxyd,tcp]=127.0.0.1:${P[5]}
systemd-socket-activate -l "127.0.0.1:${P[6]}" "$PROXYD" -c 30000 "$BU" 2>/dev/null &
pids+=($!); ADDR[socket-proxyd,unix]=127.0.0.1:${P[6]}
haproxy_cfg "$tmp/haproxy.cfg" 9000 "${P[7]}" "$BT" "${P[8]}" "$BU"
haproxy -db -f "$tmp/haproxy.cfg" 2>/dev/null &
pids+=($!); ADDR[haproxy,tcp]=127.0.0.1:${P[7]}; ADDR[haproxy,unix]=127.0.0.1:${P[8]}
for n in "${names[@]}"; do
	"$LG" waitport -max 15s "${ADDR[$n,tcp]}" "${ADDR[$n,unix]}"
done

raw=$tmp/raw
for rep in $(seq 1 "$REPS"); do
	for k in tcp unix; do
		for n in "${names[@]}"; do
			v=$("$LG" bulk -addr "${ADDR[$n,$k]}" -streams "$STREAMS" -secs "$SECS" -dir up | grep -o 'rate_MBps=[0-9]*' | cut -d= -f2)
			echo "bulk-$k-$STREAMS $n $rep MB/s=$v" | tee -a "$raw"
		done
		for n in "${names[@]}"; do
			v=$("$LG" conn -addr "${ADDR[$n,$k]}" -n "$SHORTN" -c 64 -send 64 -expect 64 -max 20s | grep -o 'rate=[0-9]*' | cut -d= -f2)
			echo "short-$k $n $rep conn/s=$v" | tee -a "$raw"
		done
	done
done
echo "# medians of $REPS"
awk '{split($4, kv, "="); v[$1 " " $2] = v[$1 " " $2] " " kv[2]; u[$1 " " $2] = kv[1]}
END {
	for (k in v) {
		n = split(v[k], a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
		print k, u[k] "=" a[int((n + 1) / 2)]
	}
}' "$raw" | sort
