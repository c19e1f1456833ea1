# A partition: this guest's frames stop reaching the server (its ARP entry
# for the server points at a MAC no one has) while a process faults its
# pages back from far memory. The reads time out, the client tries to
# reconnect for reconnect_timeout_s (5 s here), then declares the far
# memory lost and disconnects every queue, not only the ones that failed;
# the server, having lost all the client's queues, keeps its region for
# a reconnect (--reconnect-linger 600 s), but a lingering session is not a
# live client: a new client the budget (one region) would refuse removes
# it and gets the memory at once. Had the client left a queue connected,
# the server would still count it live and refuse the new one.
# server-args: --memory 320M --reconnect-linger 600s
# server-log: keeping its region for 600 s for a reconnect
# server-log: lingering session (no queue, kept for a reconnect) removed to make room for new client
. /tests/lib.sh
rdma_client
paused_in_far_memory reconnect_timeout_s=5
refuse "a second client is refused while the first holds the budget" \
    farmem-probe join $SERVER_IP $PORT --id 5ca1ab1e --queues 1
ok "far memory holds $(backend pages) pages; cutting the path to the server"
# Soft-RoCE sends through the IP stack, which takes the MAC from the ARP
# table for every frame. (A blackhole route would not do: Soft-RoCE looks
# routes up on its own interface, where the kernel takes a failed lookup
# to mean the peer is on the link.)
cut_path
touch /tmp/go
await 120 0.5 dmesg_has "far memory server $SERVER_IP:$PORT"
restore_path
dmesg_has "far memory server $SERVER_IP:$PORT" || fail "no loss declared within 60 s of losing the path"
ok "loss declared: $(dmesg | grep -m1 "far memory server $SERVER_IP")"
wait $pid
rc=$?
[ $rc -eq 135 ] || fail "the process with lost pages exited with $rc, expected SIGBUS (135)"
ok "process faulting on a lost page got SIGBUS"
await 30 1 dmesg_has "disconnected every queue"
dmesg_has "disconnected every queue from $SERVER_IP:$PORT" || fail "the client did not disconnect its queues after the loss"
# The server keeps the region once the last queue's disconnect arrives;
# the new client removes it.
got=
for i in $(seq 30); do
    if farmem-probe join $SERVER_IP $PORT --id 5ca1ab1e --queues 1; then got=1; break; fi
    sleep 2
done
[ -n "$got" ] || fail "the server kept the lost client's region: a new client found no room within 60 s"
ok "a new client got the memory the lost client held"
mark_swap
expect "new workload verifies with the far memory lost" in_cgroup $W verify --size $(by_kernel 48M 32M)
swap_since_mark
[ "$disk" -gt 0 ] || fail "refused pages did not reach the swap device"
unload_modules rdma
