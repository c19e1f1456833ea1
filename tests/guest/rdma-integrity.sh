# Pages swapped out over RDMA to farmem-server and faulted back, every byte
# checked; the kernel's counters agree and the swap device sees no writes.
# Soft-RoCE between two emulated guests moves ~200 pages/s, so the working
# set is 64 MiB in a 32 MiB cgroup (the DRAM tests use 256 MiB in 128 MiB).
# The server grants every queue the 16 outstanding RDMA reads the client
# asks for (readahead keeps several in flight): every read queue's QP on
# the client says so, and the server logs the depth of its side.
# server-log: region, read depth 16)
. /tests/lib.sh
rdma_client
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
mark_swap
expect "$((2 * limit)) MiB pattern survives swap over RDMA, one process" in_cgroup $W verify --size $((2 * limit))M
expect "4 processes on 2 vCPUs survive swap over RDMA" in_cgroup $W verify --size $((2 * limit))M --procs 4
swap_since_mark
counters_report
[ "$(fs succ_stores)" -ge $((limit * 256)) ] || fail "only $(fs succ_stores) pages went through RDMA"
[ "$(fs failed_stores)" -eq 0 ] || fail "$(fs failed_stores) stores failed"
counters_agree
[ "$(backend name)" = rdma ] || fail "backend is $(backend name), not rdma"
ok "counters agree; swap device untouched"
