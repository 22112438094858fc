#!/usr/bin/env bash
# bench/ab-modes.sh: two acceptd builds side by side on the proxy services
# that are not plain relays: proxy_protocol v1 and v2 (a TCP backend that
# skips the header), accept_proxy_protocol (clients send a PROXY v1
# header), and a start block (each daemon starts its own backend); and
# haproxy doing the same where it can (send-proxy, send-proxy-v2,
# accept-proxy; it has no start). Short connections at 64 clients with each
# daemon's CPU per connection, then the Pss per held idle connection of
# each daemon's process tree (for start, acceptd and the backend it
# started).
#
# Usage: bench/ab-modes.sh OLD_ACCEPTD NEW_ACCEPTD
# Environment: REPS (4), SHORTN (6000), HOLD (1000). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
REPS=${REPS:-4}
SHORTN=${SHORTN:-6000}
HOLD=${HOLD:-1000}

. bench/lib.sh
need ab-modes.sh go haproxy
bench_tmp abmodes
relay_backend 14

modes=(pp-v1 pp-v2 accept-pp start)
builds=(old new haproxy)
declare -A ADDR PID
i=1
for m in "${modes[@]}"; do
	for b in 0 1; do
		bin=$1
		[ "$b" = 1 ] && bin=$2
		dir=$tmp/$m-${builds[$b]}
		mkdir "$dir"
		accept=false
		case $m in
		pp-v*) block="proxy_protocol = \"${m#pp-}\"" backend=$BT ;;
		accept-pp) block="" backend=$BT accept=true ;;
		start)
			# Its own backend on a port of its own, started on the
			# first connection and kept for the run.
			backend=127.0.0.1:${P[$((9 + b))]}
			block="connect_retry = \"10s\"
    start {
      command        = [\"$LG\", \"backend\", \"-listen\", \"$backend\"]
      stop_when_idle = \"1h\"
    }"
			;;
		esac
		cat >"$dir/acceptd.hcl" <<EOF
control {
  socket = "$dir/control.sock"
}
service "m" {
  listen                = ["127.0.0.1:${P[$i]}"]
  max_connections       = 30000
  accept_proxy_protocol = $accept
  proxy {
    backend = "$backend"
    $block
  }
}
EOF
		"$bin" run -config "$dir/acceptd.hcl" 2>/dev/null &
		pids+=($!)
		PID[$m,$b]=$! ADDR[$m,$b]=127.0.0.1:${P[$i]}
		i=$((i + 1))
	done
done
# haproxy, one frontend per mode it has, with its defaults for mode tcp.
cat >"$tmp/haproxy.cfg" <<EOF
global
	maxconn 9000
defaults
	mode tcp
	maxconn 9000
	timeout connect 5s
	timeout client 10m
	timeout server 10m
frontend f_v1
	bind 127.0.0.1:${P[11]} backlog 4096
	default_backend b_v1
backend b_v1
	server s1 $BT send-proxy
frontend f_v2
	bind 127.0.0.1:${P[12]} backlog 4096
	default_backend b_v2
backend b_v2
	server s1 $BT send-proxy-v2
frontend f_accept
	bind 127.0.0.1:${P[13]} accept-proxy backlog 4096
	default_backend b_plain
backend b_plain
	server s1 $BT
EOF
haproxy -db -f "$tmp/haproxy.cfg" 2>/dev/null &
pids+=($!)
i=11
for m in pp-v1 pp-v2 accept-pp; do
	PID[$m,2]=$! ADDR[$m,2]=127.0.0.1:${P[$i]}
	i=$((i + 1))
done

# builds_of MODE: the indexes into builds that run MODE (haproxy has no
# start).
builds_of() { if [ "$1" = start ]; then echo 0 1; else echo 0 1 2; fi; }
# hdr MODE: loadgen's flag for a mode whose clients send a PROXY header.
hdr() { if [ "$1" = accept-pp ]; then echo -proxy-header; fi; }
for m in "${modes[@]}"; do
	for b in $(builds_of "$m"); do
		"$LG" waitport -max 15s "${ADDR[$m,$b]}"
		# Starts the on-demand backend, warms everything up.
		"$LG" hold -addr "${ADDR[$m,$b]}" -n 10 -max 15s $(hdr "$m") >/dev/null
	done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for rep in $(seq 1 "$REPS"); do
	for m in "${modes[@]}"; do
		for b in $(builds_of "$m"); do
			c0=$(cpu_ticks "${PID[$m,$b]}")
			line=$("$LG" conn -addr "${ADDR[$m,$b]}" -n "$SHORTN" -c 64 -send 64 -expect 64 -max 30s $(hdr "$m"))
			c1=$(cpu_ticks "${PID[$m,$b]}")
			echo "short $m ${builds[$b]} rep=$rep $(grep -o 'rate=[0-9]*' <<<"$line") $(grep -o 'p99_us=[0-9]*' <<<"$line") cpu_us/conn=$(((c1 - c0) * 1000000 / hz / SHORTN))"
		done
	done
done

# Pss in KiB of each tree (usage prints "PSS_KIB FDS THREADS"), before
# and while HOLD idle connections are held.
for m in "${modes[@]}"; do
	for b in $(builds_of "$m"); do
		pid=${PID[$m,$b]}
		read -r k0 f0 _ < <("$LG" usage -pid "$pid")
		"$LG" hold -addr "${ADDR[$m,$b]}" -n "$HOLD" -max 8s $(hdr "$m") >/dev/null 2>&1 &
		hp=$!
		sleep 5
		read -r k1 f1 _ < <("$LG" usage -pid "$pid")
		wait "$hp" || true
		awk -v m="$m" -v b="${builds[$b]}" -v k="$((k1 - k0))" -v f="$((f1 - f0))" -v n="$HOLD" \
			'BEGIN {printf "idle %s %s KiB/conn=%.1f fds/conn=%.1f\n", m, b, k / n, f / n}'
	done
done
