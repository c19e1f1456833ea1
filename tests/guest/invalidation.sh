# When the workload exits, every page it had swapped out is released by
# frontswap and freed by the backend.
. /tests/lib.sh
swap_on
load_dram
# 192 MiB through a 64 MiB cgroup (debug kernel: 160 MiB through 32 MiB;
# either way the pool holds over 128 MiB at its peak).
cgroup memory.max $(by_kernel 64M 32M)
free0=$(awk '/MemFree/ { print $2 }' /proc/meminfo)
expect "workload verifies" in_cgroup $W verify --size $(by_kernel 192M 160M)
[ "$(fs succ_stores)" -gt 0 ] || fail "nothing was stored"
sleep 1
echo "after exit: frontswap curr_pages=$(fs curr_pages) invalidates=$(fs invalidates); backend pages=$(backend pages) bytes=$(backend bytes)"
[ "$(fs curr_pages)" -eq 0 ] || fail "frontswap still holds $(fs curr_pages) pages"
[ "$(backend pages)" -eq 0 ] || fail "backend still holds $(backend pages) pages"
[ "$(backend bytes)" -eq 0 ] || fail "backend still uses $(backend bytes) bytes"
[ "$(fs invalidates)" -gt 0 ] || fail "no page was invalidated"
free1=$(awk '/MemFree/ { print $2 }' /proc/meminfo)
# The pool's pages went back to the kernel: free memory is within 64 MiB of
# where it started. The pool held over 128 MiB at its peak, so a leak of
# half of it fails; smaller drifts of
# MemFree (per-CPU page lists, slab, page cache) have reached 36 MiB here.
drop=$((free0 - free1))
[ $drop -lt 65536 ] || fail "free memory dropped by $drop KiB"
ok "all pages released and freed (free memory moved by $((drop / 1024)) MiB)"
