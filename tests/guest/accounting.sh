# Fastswap's counters agree with the kernel's swap counters, and the swap
# device sees no page writes while fastswap accepts every page.
. /tests/lib.sh
swap_on
load_dram
# 160 MiB through a 64 MiB cgroup (debug kernel: 80 MiB through 32 MiB).
cgroup memory.max $(by_kernel 64M 32M)
mark_swap
expect "workload verifies" in_cgroup $W verify --size $(by_kernel 160M 80M)
swap_since_mark
counters_report
[ "$(fs succ_stores)" -gt 0 ] && [ "$(fs loads)" -gt 0 ] || fail "counters are zero"
[ "$(fs failed_stores)" -eq 0 ] || fail "stores failed with a large pool"
counters_agree loads
ok "counters agree; swap device untouched"
