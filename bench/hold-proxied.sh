#!/usr/bin/env bash
# bench/hold-proxied.sh: memory and fds of 1000 held idle connections
# through an accept_proxy_protocol proxy (proxy_protocol v1 to a TCP
# backend), on a fresh daemon. Prints the daemon tree's Pss (KiB), fds
# and pipes (loadgen usage) before and while they are held.
#
# Usage: bench/hold-proxied.sh ACCEPTD      Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
BIN=$1
d=$(mktemp -d /tmp/acdhold.XXXXXX)
go build -o "$d/loadgen" ./bench/cmd/loadgen
LG=$d/loadgen
mapfile -t P < <($LG freeport -n 2); BT=127.0.0.1:${P[0]}
$LG backend -listen $BT & bp=$!; $LG waitport $BT
cat > $d/a.hcl <<H
control {
  socket = "$d/c.sock"
}
service "a" {
  listen                = ["127.0.0.1:${P[1]}"]
  accept_proxy_protocol = true
  max_connections       = 5000
  proxy {
    backend        = "$BT"
    proxy_protocol = "v1"
  }
}
H
$BIN run -config $d/a.hcl 2>/dev/null & ap=$!; $LG waitport 127.0.0.1:${P[1]}
$LG hold -addr 127.0.0.1:${P[1]} -n 50 -proxy-header -max 1s >/dev/null
sleep 0.5; b=$($LG usage -pid $ap)
$LG hold -addr 127.0.0.1:${P[1]} -n 1000 -proxy-header -max 4s > $d/h.txt & hp=$!
for i in $(seq 1 40); do grep -q ready $d/h.txt 2>/dev/null && break; sleep 0.1; done; sleep 1
a=$($LG usage -pid $ap); echo "$BIN before: $b  held: $a  $(cat $d/h.txt)"
wait $hp; kill $ap $bp; wait 2>/dev/null || true; rm -rf "$d"
