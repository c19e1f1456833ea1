# Pages swapped out over RDMA to farmem-server and faulted back, every byte
# checked; the kernel's counters agree and the swap device sees no writes.
# Soft-RoCE between two emulated guests moves ~200 pages/s, so the working
# set is 64 MiB in a 32 MiB cgroup (the DRAM tests use 256 MiB in 128 MiB).
# The server grants every queue the 16 outstanding RDMA reads the client
# asks for (readahead keeps several in flight): every read queue's QP on
# the client says so, and the server logs the depth of its side.
# server-log: region, read depth 16)
. /tests/lib.sh
rdma_up $CLIENT_IP
swap_on
load_rdma
depth=$(dmesg | sed -n 's/.*ctrl is ready for reqs: .*read depth \([0-9]*\)).*/\1/p' | tail -1)
[ "${depth:-0}" -eq 16 ] || fail "the queues may have ${depth:-an unknown number of} RDMA reads outstanding, not the 16 asked for"
ok "every read queue may have 16 RDMA reads outstanding"
# /sys/kernel/mm/fastswap shows the connection: nq=2 is 6 queues.
S=/sys/kernel/mm/fastswap
for kv in backend=rdma state=active server=$SERVER_IP:$PORT queues=6 enabled=1; do
    [ "$(cat $S/${kv%%=*})" = "${kv#*=}" ] || fail "$S/${kv%%=*} is '$(cat $S/${kv%%=*})', not '${kv#*=}'"
done
[ "$(cat $S/capacity_bytes)" -eq $(( $(backend slots) * 4096 )) ] || fail "capacity_bytes is not the server's region"
ok "sysfs: rdma, active, $SERVER_IP:$PORT, 6 queues, $(( $(cat $S/capacity_bytes) >> 20 )) MiB"
st=$(fastswapctl status) || fail "fastswapctl status exited $? with the RDMA backend connected"
echo "$st" | grep -q "^server *$SERVER_IP:$PORT\$" && echo "$st" | grep -q "^queues *6\$" ||
    fail "fastswapctl status does not show the server and 6 queues: $st"
ok "fastswapctl status: $SERVER_IP:$PORT, 6 queues"
progress 10
limit=$(by_kernel 32 16) # MiB; the data is twice the limit (debug kernel: 32 MiB in 16 MiB)
cgroup memory.max ${limit}M
disk0=$(disk_writes); out0=$(vmstat pswpout); in0=$(vmstat pswpin)
expect "$((2 * limit)) MiB pattern survives swap over RDMA, one process" in_cgroup $W verify --size $((2 * limit))M
expect "4 processes on 2 vCPUs survive swap over RDMA" in_cgroup $W verify --size $((2 * limit))M --procs 4
out=$(( $(vmstat pswpout) - out0 )); in=$(( $(vmstat pswpin) - in0 )); disk=$(( $(disk_writes) - disk0 ))
echo "pswpout=$out pswpin=$in frontswap stores=$(fs succ_stores) loads=$(fs loads) async=$(fs async_loads) failed=$(fs failed_stores) backend stores=$(backend stores) loads=$(backend loads) disk sectors written=$disk"
[ "$(fs succ_stores)" -ge $((limit * 256)) ] || fail "only $(fs succ_stores) pages went through RDMA"
[ "$(fs failed_stores)" -eq 0 ] || fail "$(fs failed_stores) stores failed"
[ "$out" -eq "$(fs succ_stores)" ] || fail "pswpout $out != frontswap stores $(fs succ_stores)"
[ "$in" -eq "$(fs loads)" ] || fail "pswpin $in != frontswap loads $(fs loads)"
[ "$(backend stores)" -eq "$(fs succ_stores)" ] || fail "backend stores $(backend stores) != frontswap stores"
[ "$disk" -eq 0 ] || fail "swap device received $disk sectors of writes"
[ "$(backend name)" = rdma ] || fail "backend is $(backend name), not rdma"
ok "counters agree; swap device untouched"
