# bench/lib.sh: what the bench scripts share; sourced, not run.

# bench_tmp NAME: a temporary directory in $tmp, and $pids, the background
# processes that are killed, waited for and removed with it on exit.
bench_tmp() {
	tmp=$(mktemp -d "/tmp/acd$1.XXXXXX")
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}

# need SCRIPT PROGRAM...: exit with a message when a program is missing.
need() {
	local script=$1 t
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "$script: $t is missing" >&2; exit 1; }
	done
}

# haproxy_cfg FILE MAXCONN TCP_PORT TCP_BACKEND UNIX_PORT UNIX_BACKEND: a
# haproxy configuration with its defaults for mode tcp (no splice option),
# one frontend on 127.0.0.1 per backend kind.
haproxy_cfg() {
	cat >"$1" <<HAPROXY
global
	maxconn $2
defaults
	mode tcp
	maxconn $2
	timeout connect 5s
	timeout client 10m
	timeout server 10m
frontend ft_tcp
	bind 127.0.0.1:$3 backlog 4096
	default_backend bk_tcp
backend bk_tcp
	server s1 $4
frontend ft_unix
	bind 127.0.0.1:$5 backlog 4096
	default_backend bk_unix
backend bk_unix
	server s1 $6
HAPROXY
}

# relay_backend N: builds loadgen as $LG, picks N free ports into P and
# starts the echo/sink backend on 127.0.0.1:${P[0]} ($BT) and on the UNIX
# socket $BU; returns once both accept.
relay_backend() {
	go build -o "$tmp/loadgen" ./bench/cmd/loadgen
	LG=$tmp/loadgen
	mapfile -t P < <("$LG" freeport -n "$1")
	BT=127.0.0.1:${P[0]}
	BU=$tmp/backend.sock
	"$LG" backend -listen "$BT" -listen "unix:$BU" &
	pids+=($!)
	"$LG" waitport "$BT" "unix:$BU"
}

# error_summary FILE: the five most frequent lines of FILE as comments, for
# the end of a results file; nothing when FILE is empty.
error_summary() {
	if [ -s "$1" ]; then
		echo "# first errors:"
		sort "$1" | uniq -c | sort -rn | head -5 | sed 's/^/# /'
	fi
}
