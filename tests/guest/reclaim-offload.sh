# With vm.memcg_reclaim_offload_cpu=1, memory.high reclaim runs on CPU 1.
. /tests/lib.sh
swap_on
load_dram
[ "$(cat /proc/sys/vm/memcg_reclaim_offload_cpu)" = -1 ] || fail "offload is not off by default"
echo 1 > /proc/sys/vm/memcg_reclaim_offload_cpu
# 192 MiB above a 96 MiB memory.high (debug kernel: 64 MiB above 32 MiB).
cgroup memory.high $(by_kernel 96M 32M)
expect "workload verifies under offloaded reclaim" in_cgroup $W verify --size $(by_kernel 192M 64M) --passes 2
cat /sys/kernel/debug/memcg_reclaim_offload
c0=$(awk '$1 == "cpu0" { print $2 }' /sys/kernel/debug/memcg_reclaim_offload)
c1=$(awk '$1 == "cpu1" { print $2 }' /sys/kernel/debug/memcg_reclaim_offload)
[ "$c1" -gt 0 ] || fail "no reclaim batch ran on CPU 1"
[ "$c0" -eq 0 ] || fail "$c0 offloaded batches ran on CPU 0"
[ "$(fs succ_stores)" -gt 0 ] || fail "nothing was swapped out"
ok "reclaim ran on CPU 1 ($c1 batches), pages went through fastswap"
