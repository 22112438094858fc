#!/usr/bin/env bash
# bench/relay.sh: acceptd proxy against systemd-socket-proxyd, socat and
# haproxy (mode tcp), with a direct client-to-backend baseline, side by
# side on loopback in one run (issue 3, "Speed and cost"):
#   - bulk upload throughput, 1 and 8 streams, TCP->TCP and TCP->UNIX;
#   - short connections/s at concurrency 64 (connect, 64 B each way,
#     close) with p50/p99;
#   - memory (the relay's own, Pss summed over its processes, and the
#     kernel's: Slab + KernelStack + PageTables from /proc/meminfo, minus
#     what the same connections cost without a relay) and fds per idle
#     relayed connection, 1,000 and 10,000 held open (TCP->TCP).
#
# Usage: bench/relay.sh [OUT]        (default OUT: bench/results/relay-DATE.txt)
# Environment: REPS (3; medians), SECS (bulk seconds per point, 1.5),
# SHORTN (short connections per point, 5000), IDLE ("1000 3000 10000").
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
SECS=${SECS:-1.5}
SHORTN=${SHORTN:-5000}
OUT=${1:-bench/results/relay-$(date +%Y-%m-%d).txt}
PROXYD=/lib/systemd/systemd-socket-proxyd

# Held connections cost acceptd and haproxy 2 fds each, socket-proxyd 6
# (two sockets and two pipes). The soft limit goes up to the hard one;
# raising the hard limit needs CAP_SYS_RESOURCE, which a container may
# lack: points that cannot fit are reported as skipped, with the reason.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
# 10,000 held needs 20,064 fds in a 2-fd relay; below that, the largest
# thousand that fits stands in for it.
big=10000
[ $((big * 2 + 64)) -le "$NOFILE" ] || big=$(((NOFILE - 64) / 2 / 1000 * 1000))
IDLE=${IDLE:-"1000 3000 $big"}

. bench/lib.sh
bench_tmp relay

need relay.sh go socat haproxy systemd-socket-activate "$PROXYD"

echo "building acceptd and loadgen in $tmp" >&2
go build -o "$tmp/acceptd" ./cmd/acceptd
relay_backend 9

declare -A ADDR PID
ADDR[direct,tcp]=$BT
ADDR[direct,unix]=unix:$BU

# acceptd proxy: one daemon per backend kind; one log line per connection
# at level info, to /dev/null.
"$tmp/acceptd" proxy -c 30000 -listen "127.0.0.1:${P[1]}" "$BT" 2>/dev/null &
pids+=($!); PID[acceptd,tcp]=$!; ADDR[acceptd,tcp]=127.0.0.1:${P[1]}
"$tmp/acceptd" proxy -c 30000 -listen "127.0.0.1:${P[2]}" "$BU" 2>/dev/null &
pids+=($!); PID[acceptd,unix]=$!; ADDR[acceptd,unix]=127.0.0.1:${P[2]}

# systemd-socket-proxyd gets its socket the way systemd gives it; the
# activator execs it in its own place on the first connection.
systemd-socket-activate -l "127.0.0.1:${P[3]}" "$PROXYD" -c 30000 "$BT" 2>/dev/null &
pids+=($!); PID[socket-proxyd,tcp]=$!; ADDR[socket-proxyd,tcp]=127.0.0.1:${P[3]}
systemd-socket-activate -l "127.0.0.1:${P[4]}" "$PROXYD" -c 30000 "$BU" 2>/dev/null &
pids+=($!); PID[socket-proxyd,unix]=$!; ADDR[socket-proxyd,unix]=127.0.0.1:${P[4]}

socat "TCP-LISTEN:${P[5]},bind=127.0.0.1,fork,reuseaddr,backlog=4096" "TCP:$BT" 2>/dev/null &
pids+=($!); PID[socat,tcp]=$!; ADDR[socat,tcp]=127.0.0.1:${P[5]}
socat "TCP-LISTEN:${P[6]},bind=127.0.0.1,fork,reuseaddr,backlog=4096" "UNIX-CONNECT:$BU" 2>/dev/null &
pids+=($!); PID[socat,unix]=$!; ADDR[socat,unix]=127.0.0.1:${P[6]}

# haproxy with its defaults for mode tcp (no splice option), in the
# foreground, both frontends in one process.
haproxy_cfg "$tmp/haproxy.cfg" $(((NOFILE - 200) / 2)) "${P[7]}" "$BT" "${P[8]}" "$BU"
haproxy -db -f "$tmp/haproxy.cfg" 2>/dev/null &
pids+=($!); PID[haproxy,tcp]=$!; PID[haproxy,unix]=$!
ADDR[haproxy,tcp]=127.0.0.1:${P[7]}; ADDR[haproxy,unix]=127.0.0.1:${P[8]}

relays=(direct acceptd socket-proxyd socat haproxy)
for r in "${relays[@]}"; do
	for k in tcp unix; do "$LG" waitport -max 15s "${ADDR[$r,$k]}"; done
done

raw=$tmp/raw
: >"$raw"
for rep in $(seq 1 "$REPS"); do
	for k in tcp unix; do
		for s in 1 8; do
			for r in "${relays[@]}"; do
				line=$(timeout 60 "$LG" bulk -addr "${ADDR[$r,$k]}" -streams "$s" -secs "$SECS" -dir up 2>>"$tmp/errors" || echo "bytes=0 secs=0 rate_MBps=0")
				echo "bulk-$k-$s $r $rep $line" >>"$raw"
				echo "rep $rep bulk tcp->$k streams=$s $r: $line" >&2
			done
		done
		for r in "${relays[@]}"; do
			line=$(timeout 60 "$LG" conn -addr "${ADDR[$r,$k]}" -n "$SHORTN" -c 64 -send 64 -expect 64 -max 20s 2>>"$tmp/errors" || echo "ok=0 err=-1 secs=0 rate=0 p50_us=0 p99_us=0")
			echo "short-$k $r $rep $line" >>"$raw"
			echo "rep $rep short tcp->$k $r: $line" >&2
		done
	done
done

# usage PID: "pss_kib fds pipes" summed over PID and its descendants
# (socat forks one per connection).
usage() { "$LG" usage -pid "$1"; }
kmem() { awk '/^(Slab|KernelStack|PageTables):/ {s += $2} END {print s}' /proc/meminfo; }

idle=$tmp/idle
: >"$idle"
for n in $IDLE; do
	for r in "${relays[@]}"; do
		if [ "$r" = socat ] && [ "$n" -gt 1000 ]; then
			echo "$r $n skipped:one-process-per-connection" >>"$idle"
			continue
		fi
		per=2
		case $r in socket-proxyd) per=6 ;; direct) per=1 ;; esac
		if [ $((n * per + 64)) -gt "$NOFILE" ]; then
			echo "$r $n skipped:needs-$((n * per))-fds,RLIMIT_NOFILE=$NOFILE" >>"$idle"
			continue
		fi
		pid=${PID[$r,tcp]:-}
		sleep 1
		before=$(if [ -n "$pid" ]; then usage "$pid"; else echo "0 0 0"; fi)
		kb=$(kmem)
		"$LG" hold -addr "${ADDR[$r,tcp]}" -n "$n" -max 120s >"$tmp/hold.out" 2>>"$tmp/errors" &
		hp=$!
		for _ in $(seq 1 600); do
			grep -q ready "$tmp/hold.out" 2>/dev/null && break
			kill -0 "$hp" 2>/dev/null || break
			sleep 0.1
		done
		if ! grep -q ready "$tmp/hold.out"; then
			echo "$r $n failed:$(tail -1 "$tmp/errors" | tr ' ' _)" >>"$idle"
			kill "$hp" 2>/dev/null || true
			wait "$hp" 2>/dev/null || true
			continue
		fi
		sleep 1
		after=$(if [ -n "$pid" ]; then usage "$pid"; else echo "0 0 0"; fi)
		ka=$(kmem)
		echo "$r $n $before $after $kb $ka" >>"$idle"
		echo "idle $r n=$n: before $before after $after kmem $kb -> $ka" >&2
		kill "$hp"
		wait "$hp" 2>/dev/null || true
		# Let the relay see the closes before the next point.
		sleep 2
	done
done

{
	echo "# bench/relay.sh $(date -Iseconds)"
	echo "# acceptd $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server spawn cmd || echo '+dirty'); $(go version | cut -d' ' -f3); kernel $(uname -r); $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# relays: acceptd proxy -c 30000; systemd-socket-proxyd -c 30000 under systemd-socket-activate;"
	echo "#         socat TCP-LISTEN:..,fork TCP:/UNIX-CONNECT:; haproxy $(haproxy -v | head -1 | cut -d' ' -f3) mode tcp, defaults (no splice option)"
	echo "# bulk: upload, $SECS s per point, bytes counted by the backend; short: $SHORTN connections, 64 at a time, 64 B each way"
	echo "# RLIMIT_NOFILE $NOFILE (hard limit; raising it needs CAP_SYS_RESOURCE); idle points: $IDLE"
	echo "# medians of $REPS runs; vs-proxyd and vs-haproxy are ratios to those relays' figures of the same row kind;"
	echo "# p-proxyd and p-haproxy are the medians over the runs of the ratio within one run (seconds apart),"
	echo "# which cancels the machine's load drifting between runs"
	echo
	awk '
	function median(s,   a, n, i, t, x) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (t = i + 1; t <= n; t++) if (a[t] + 0 < a[i] + 0) { x = a[i]; a[i] = a[t]; a[t] = x }
		return a[int((n + 1) / 2)]
	}
	{
		key = $1 " " $2
		if (!($1 in tseen)) { tseen[$1] = 1; tests[++nt] = $1 }
		if (!($2 in rseen)) { rseen[$2] = 1; rel[++nr] = $2 }
		for (f = 4; f <= NF; f++) { split($f, kv, "="); v[key, kv[1]] = v[key, kv[1]] " " kv[2]; one[key, $3, kv[1]] = kv[2] }
		if (!($3 in pseen)) { pseen[$3] = 1; reps[++np] = $3 }
	}
	# paired(t, r, peer, f): the median over the runs of the figure of r
	# divided by that of peer in the same run.
	function paired(t, r, peer, f,   i, s, d) {
		s = ""
		for (i = 1; i <= np; i++) if ((d = one[t " " peer, reps[i], f]) > 0) s = s " " one[t " " r, reps[i], f] / d
		return s == "" ? 0 : median(s)
	}
	END {
		printf "%-16s %-14s %10s %9s %10s %9s %9s %9s %9s\n", "test", "relay", "value", "unit", "vs-proxyd", "vs-haproxy", "p-proxyd", "p-haproxy", "p99_ms"
		for (i = 1; i <= nt; i++) {
			t = tests[i]
			f = (t ~ /^bulk/) ? "rate_MBps" : "rate"
			unit = (t ~ /^bulk/) ? "MB/s" : "conn/s"
			pd = median(v[t " socket-proxyd", f]); hp = median(v[t " haproxy", f])
			for (j = 1; j <= nr; j++) {
				r = rel[j]
				x = median(v[t " " r, f])
				p99 = (t ~ /^short/) ? sprintf("%9.2f", median(v[t " " r, "p99_us"]) / 1000) : ""
				printf "%-16s %-14s %10.0f %9s %10.2f %9.2f %9.2f %9.2f %s\n", t, r, x, unit, (pd > 0 ? x / pd : 0), (hp > 0 ? x / hp : 0), paired(t, r, "socket-proxyd", f), paired(t, r, "haproxy", f), p99
			}
			print ""
		}
	}' "$raw"
	echo "# idle connections (TCP->TCP): per held connection; kernel = (Slab+KernelStack+PageTables delta) - direct's delta"
	awk '
	$3 ~ /^(skipped|failed)/ { res[$2, $1] = $3; if (!($2 in ns)) { ns[$2] = 1; nn[++k] = $2 }; next }
	{
		r = $1; n = $2
		if (!(n in ns)) { ns[n] = 1; nn[++k] = n }
		own[n, r] = ($6 - $3) / n; fds[n, r] = ($7 - $4) / n; pipes[n, r] = ($8 - $5) / n
		kern[n, r] = ($10 - $9) / n
	}
	END {
		printf "%-6s %-14s %10s %10s %10s %8s %8s %10s %10s\n", "held", "relay", "own_KiB", "kern_KiB", "total_KiB", "fds", "pipes", "vs-proxyd", "vs-haproxy"
		split("direct acceptd socket-proxyd socat haproxy", rels, " ")
		for (i = 1; i <= k; i++) {
			n = nn[i]
			base = kern[n, "direct"]
			for (j = 1; j <= 5; j++) {
				r = rels[j]
				if ((n, r) in res) { printf "%-6s %-14s %s\n", n, r, res[n, r]; continue }
				kr = (r == "direct") ? kern[n, r] : kern[n, r] - base
				tot[r] = own[n, r] + kr
				totp = own[n, "socket-proxyd"] + kern[n, "socket-proxyd"] - base
				toth = own[n, "haproxy"] + kern[n, "haproxy"] - base
				if (r == "direct") { printf "%-6s %-14s %10.2f %10.2f %10s %8.2f %8.2f   (client+backend sockets, no relay)\n", n, r, own[n, r], kr, "-", fds[n, r], pipes[n, r]; continue }
				printf "%-6s %-14s %10.2f %10.2f %10.2f %8.2f %8.2f %10s %10s\n", n, r, own[n, r], kr, tot[r], fds[n, r], pipes[n, r], ((n, "socket-proxyd") in res ? "-" : sprintf("%.2f", tot[r] / totp)), ((n, "haproxy") in res ? "-" : sprintf("%.2f", tot[r] / toth))
			}
			print ""
		}
	}' "$idle"
	echo "# raw: test relay rep result"
	sed 's/^/# /' "$raw"
	echo "# raw idle: relay held pss_kib fds pipes (before) pss_kib fds pipes (after) kmem_kib before after"
	sed 's/^/# /' "$idle"
	error_summary "$tmp/errors"
} | tee "$OUT"
echo "wrote $OUT" >&2
