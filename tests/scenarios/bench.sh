# Swap-in fault latency for each backend, measured the same way in this one
# guest: fill a region, evict it with MADV_PAGEOUT, touch every page in a
# random order. Prints one "BENCH {json}" line per run. The guest is the
# client of the RDMA testbed, so fastswap-rdma is measured in the same run.
. /tests/lib.sh
SIZE=$(sed -n 's/.*bench_size=\([^ ]*\).*/\1/p' /proc/cmdline)
ROUNDS=$(sed -n 's/.*bench_rounds=\([^ ]*\).*/\1/p' /proc/cmdline)
run() {
    for i in $(seq "${ROUNDS:-3}"); do
        echo "BENCH $(in_cgroup $W faultlat --size "${SIZE:-16M}" --seed "$i" --backend "$1" --reclaim $CG/memory.reclaim)" || fail "$1"
    done
}
rdma_up $CLIENT_IP
cgroup memory.max max

# Disk and zram first: frontswap serves every swap area once registered.
swap_on
run disk
swapoff /dev/vda

modprobe zram num_devices=1 || fail "modprobe zram"
echo lz4 > /sys/block/zram0/comp_algorithm
echo 512M > /sys/block/zram0/disksize
mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 || fail "zram swapon"
run zram
swapoff /dev/zram0

swapon /dev/vda || fail "swapon"
load_dram
run fastswap-dram
rmmod fastswap && rmmod fastswap_dram || fail "unloading the DRAM backend"

load_rdma
run fastswap-rdma
