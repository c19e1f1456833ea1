# When the workload exits, every page it had swapped out is released by
# frontswap and freed by the backend.
. /tests/lib.sh
swap_on
load_dram
cgroup memory.max 64M
free0=$(awk '/MemFree/ { print $2 }' /proc/meminfo)
expect "workload verifies" in_cgroup $W verify --size 192M
[ "$(fs succ_stores)" -gt 0 ] || fail "nothing was stored"
sleep 1
echo "after exit: frontswap curr_pages=$(fs curr_pages) invalidates=$(fs invalidates); backend pages=$(backend pages) bytes=$(backend bytes)"
[ "$(fs curr_pages)" -eq 0 ] || fail "frontswap still holds $(fs curr_pages) pages"
[ "$(backend pages)" -eq 0 ] || fail "backend still holds $(backend pages) pages"
[ "$(backend bytes)" -eq 0 ] || fail "backend still uses $(backend bytes) bytes"
[ "$(fs invalidates)" -gt 0 ] || fail "no page was invalidated"
free1=$(awk '/MemFree/ { print $2 }' /proc/meminfo)
# The pool's pages went back to the kernel: free memory is within 16 MiB of
# where it started.
[ $((free0 - free1)) -lt 16384 ] || fail "free memory dropped by $((free0 - free1)) KiB"
ok "all pages released and freed"
