# mTHP swap-in from a synchronous swap device: zram is the swap device,
# 64 KiB folios are on, and the DRAM pool is small enough that stores start
# failing part-way, so some ranges are partly in fastswap and partly in zram.
# Such a range must be swapped in page by page, never fail.
. /tests/lib.sh
modprobe zram || fail "modprobe zram"
echo 384M > /sys/block/zram0/disksize || fail "zram disksize"
mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 || fail "swapon zram0"
T=/sys/kernel/mm/transparent_hugepage/hugepages-64kB
echo always > $T/enabled || fail "enable 64 KiB mTHP"
load_dram size=$(by_kernel 24M 8M)
cgroup memory.max $(by_kernel 48M 24M)
expect "every byte verifies with mTHP over zram and a full pool" \
    in_cgroup $W verify --size $(by_kernel 160M 64M) --passes $(by_kernel 3 2)
echo "mTHP 64kB: swpout=$(cat $T/stats/swpout) swpout_fallback=$(cat $T/stats/swpout_fallback) swpin=$(cat $T/stats/swpin 2>/dev/null); fastswap: stores=$(fs succ_stores) failed=$(fs failed_stores) loads=$(fs loads) failed_loads=$(fs failed_loads)"
[ "$(cat $T/stats/swpout)" -gt 0 ] || fail "no 64 KiB folio was swapped out whole (the test needs them)"
[ "$(fs succ_stores)" -gt 0 ] || fail "fastswap stored nothing"
[ "$(fs failed_stores)" -gt 0 ] || fail "the pool never filled (the test needs a partly held range)"
[ "$(fs failed_loads)" -eq 0 ] || fail "$(fs failed_loads) loads failed"
ok "large folios went out whole, the pool filled, no load failed"
