# What both demos (demo.sh, demo-rdma.sh) do: narrate, show dmesg lines,
# and run the workload with fastswapctl's view of it part way through.
# (say and show_dmesg are the demos' own, not lib.sh's: scripts/demo shows
# their "demo: " lines; bench.sh's say has its own prefix and a clock.)
. /tests/lib.sh
say() { echo "demo: $*"; }
show_dmesg() { dmesg | grep -E "$1" | grep -v "taints kernel" | sed 's/^\[[ 0-9.]*\] /demo:   dmesg: /'; }

# workload_with_status SECONDS ARGS...: the verifying workload with ARGS in
# the work cgroup; `fastswapctl status` SECONDS into it, then its output.
workload_with_status() {
    local secs=$1 pid
    shift
    in_cgroup $W verify "$@" >/tmp/workload 2>&1 &
    pid=$!
    sleep "$secs"
    say "fastswapctl status, $secs s into the workload (/sys/kernel/mm/fastswap):"
    fastswapctl status | sed 's/^/demo:   /'
    wait $pid || { cat /tmp/workload; fail "workload"; }
    sed 's/^/demo:   /' /tmp/workload
}
