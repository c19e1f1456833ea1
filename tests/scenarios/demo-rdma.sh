# The RDMA flow as the README tells a user to run it, narrated.
. /tests/demo-lib.sh

say "client guest $CLIENT_IP: Soft-RoCE on eth0, 512 MiB swap disk /dev/vda"
rdma_client
server_reachable
say "insmod fastswap_rdma.ko sport=$PORT sip=$SERVER_IP cip=$CLIENT_IP nq=2; insmod fastswap.ko"
load_rdma
show_dmesg "fastswap|frontswap"
cgroup memory.max 32M
mark_swap
say "workload: write 64 MiB in a cgroup limited to 32 MiB, read it back, check every byte"
workload_with_status 60 --size 64M
swap_since_mark
say "pages written to far memory: $(fs succ_stores)   (kernel pswpout: $out)"
say "pages read back:             $(fs loads)   (kernel pswpin: $in; $(fs async_loads) readahead, asynchronous)"
say "swap device sectors written: $disk"
say "held in far memory after exit: $(backend pages) pages"
rmmod fastswap && rmmod fastswap_rdma && say "rmmod fastswap fastswap_rdma: disconnected"
sleep 2
