# Bad input and limits give clear errors, never an oops, and never lose data.
. /tests/lib.sh
swap_on
refuse "fastswap.ko without a backend" insmod $MOD/fastswap.ko
dmesg_has "no backend registered: load fastswap_rdma.ko or fastswap_dram.ko first" || fail "no clear message for a missing backend"
ok "missing backend explained in dmesg"
refuse "size=abc" insmod $MOD/fastswap_dram.ko size=abc
dmesg_has 'invalid size="abc"' || fail "no clear message for size=abc"
refuse "size=0" insmod $MOD/fastswap_dram.ko size=0
refuse "size=99999999999T (overflow)" insmod $MOD/fastswap_dram.ko size=99999999999T
ok "invalid sizes rejected with a message"
refuse "memcg_reclaim_offload_cpu=99 (no such CPU)" sh -c 'echo 99 > /proc/sys/vm/memcg_reclaim_offload_cpu'
refuse "memcg_reclaim_offload_cpu=-2" sh -c 'echo -2 > /proc/sys/vm/memcg_reclaim_offload_cpu'

# A 32 MiB pool for 160 MiB of data in a 64 MiB cgroup: stores beyond the
# pool fall back to the swap device and nothing is lost. (Debug kernel: a
# 16 MiB pool, 80 MiB in 32 MiB.)
load_dram size=$(by_kernel 32M 16M)
refuse "a second fastswap_dram.ko" insmod $MOD/fastswap_dram.ko
cgroup memory.max $(by_kernel 64M 32M)
mark_swap
expect "workload verifies with a full pool" in_cgroup $W verify --size $(by_kernel 160M 80M) --passes 2
swap_since_mark
echo "failed_stores=$(fs failed_stores) backend failed_stores=$(backend failed_stores) disk sectors written=$disk"
[ "$(fs failed_stores)" -gt 0 ] || fail "no store was refused by a full pool"
[ "$disk" -gt 0 ] || fail "refused pages did not reach the swap device"
ok "full pool falls back to the swap device"
refuse "rmmod fastswap_dram while fastswap uses it" rmmod fastswap_dram
unload_modules dram
