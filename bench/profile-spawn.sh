#!/usr/bin/env bash
# bench/profile-spawn.sh: where the spawn path spends its time.
#   1. a CPU profile of BenchmarkExecSpawn (server package), per-instance
#      cgroups on and off, shown with go tool pprof -top -cum;
#   2. strace -c on a running `acceptd run` daemon serving the tiny static
#      program at concurrency 8, for SECS seconds.
# strace attaches to the daemon's threads one by one, without -f: following
# the vforked children stalls them under ptrace (and them the clients).
#
# Usage: bench/profile-spawn.sh [OUTDIR]     (default: a temp dir, printed)
# Environment: SECS (strace window, 3), C (concurrency, 8).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-3}
C=${C:-8}
out=${1:-$(mktemp -d /tmp/acdprof.XXXXXX)}
mkdir -p "$out"
tmp=$(mktemp -d /tmp/acdps.XXXXXX)
apid=
cleanup() {
	[ -n "$apid" ] && kill "$apid" 2>/dev/null && wait "$apid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

go test -c -o "$out/server.test" ./server/
for cg in on off; do
	(cd "$out" && ./server.test -test.run '^$' -test.bench "ExecSpawn/cgroup=$cg/stderr=null/c=$C\$" \
		-test.benchtime 3000x -test.cpuprofile "cpu-cgroup-$cg.out") | grep Benchmark
	go tool pprof -top -cum -nodecount 40 "$out/server.test" "$out/cpu-cgroup-$cg.out" 2>/dev/null >"$out/pprof-cgroup-$cg.txt"
	echo "pprof (cgroup=$cg): $out/pprof-cgroup-$cg.txt"
done

go build -o "$tmp/acceptd" ./cmd/acceptd
go build -o "$tmp/loadgen" ./bench/cmd/loadgen
printf '#include <unistd.h>\nint main(void) { return write(1, "hello\\n", 6) != 6; }\n' >"$tmp/hello.c"
gcc -static -O2 -o "$tmp/hello" "$tmp/hello.c"
port=$("$tmp/loadgen" freeport)
cat >"$tmp/a.hcl" <<EOF
control {
  socket = "$tmp/control.sock"
}
service "hello" {
  listen          = ["127.0.0.1:$port"]
  max_connections = 1000
  exec {
    command = ["$tmp/hello"]
    stderr  = "null"
  }
}
EOF
"$tmp/acceptd" run -config "$tmp/a.hcl" 2>/dev/null &
apid=$!
"$tmp/loadgen" waitport "127.0.0.1:$port"
"$tmp/loadgen" conn -addr "127.0.0.1:$port" -n 1000000 -c "$C" -max "$((SECS + 4))s" >"$out/load.txt" &
lp=$!
sleep 1.5
args=()
for t in /proc/$apid/task/*; do args+=(-p "${t##*/}"); done
timeout -k 3 -s INT "$SECS" strace -c -o "$out/strace.txt" "${args[@]}" 2>/dev/null || true
wait "$lp"
echo "load (strace attached for $SECS s of it): $(cat "$out/load.txt")"
echo "strace -c of acceptd's ${#args[@]} threads: $out/strace.txt"
head -30 "$out/strace.txt"
