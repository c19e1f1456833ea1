# Fastswap's counters agree with the kernel's swap counters, and the swap
# device sees no page writes while fastswap accepts every page.
. /tests/lib.sh
swap_on
load_dram
# 160 MiB through a 64 MiB cgroup (debug kernel: 80 MiB through 32 MiB).
cgroup memory.max $(by_kernel 64M 32M)
out0=$(vmstat pswpout); in0=$(vmstat pswpin); disk0=$(disk_writes)
expect "workload verifies" in_cgroup $W verify --size $(by_kernel 160M 80M)
out=$(( $(vmstat pswpout) - out0 )); in=$(( $(vmstat pswpin) - in0 )); disk=$(( $(disk_writes) - disk0 ))
echo "pswpout=$out pswpin=$in frontswap stores=$(fs succ_stores) loads=$(fs loads) failed=$(fs failed_stores) backend stores=$(backend stores) loads=$(backend loads) disk sectors written=$disk"
[ "$(fs succ_stores)" -gt 0 ] && [ "$(fs loads)" -gt 0 ] || fail "counters are zero"
[ "$(fs failed_stores)" -eq 0 ] || fail "stores failed with a large pool"
[ "$out" -eq "$(fs succ_stores)" ] || fail "pswpout $out != frontswap stores $(fs succ_stores)"
[ "$in" -eq "$(fs loads)" ] || fail "pswpin $in != frontswap loads $(fs loads)"
[ "$(backend stores)" -eq "$(fs succ_stores)" ] || fail "backend stores $(backend stores) != frontswap stores"
[ "$(backend loads)" -eq "$(fs loads)" ] || fail "backend loads $(backend loads) != frontswap loads"
[ "$disk" -eq 0 ] || fail "swap device received $disk sectors of writes"
ok "counters agree; swap device untouched"
