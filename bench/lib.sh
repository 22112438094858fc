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
