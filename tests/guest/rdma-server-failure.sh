# The server dies while it holds pages: the client stays up, a process that
# faults on a lost page gets SIGBUS, and new swap-outs go to the swap device.
# The client first tries to reconnect, for reconnect_timeout_s (5 s here).
. /tests/lib.sh
rdma_client
paused_in_far_memory reconnect_timeout_s=5
[ "$(cat /sys/kernel/mm/fastswap/state)" = active ] || fail "sysfs state is not active before the loss"
ok "far memory holds $(backend pages) pages; killing the server"
echo "FSTEST-KILL-SERVER"
sleep 8
touch /tmp/go
wait $pid
rc=$?
[ $rc -eq 135 ] || fail "the process with lost pages exited with $rc, expected SIGBUS (135)"
ok "process faulting on a lost page got SIGBUS"
S=/sys/kernel/mm/fastswap
[ "$(cat $S/state)" = lost ] && [ "$(cat $S/queues)" = 0 ] && [ "$(cat $S/server)" = $SERVER_IP:$PORT ] ||
    fail "sysfs says state $(cat $S/state), $(cat $S/queues) queues, server $(cat $S/server) after the loss"
ok "sysfs: state lost, 0 queues, server $SERVER_IP:$PORT"
fastswapctl status >/tmp/st 2>/tmp/err; rc=$?
cat /tmp/st /tmp/err
[ $rc -eq 3 ] && grep -q "^state *lost" /tmp/st && grep -q "$SERVER_IP:$PORT" /tmp/err ||
    fail "fastswapctl status after the loss: exit $rc, no 'state lost' or no note naming the server"
ok "fastswapctl status: exit 3, state lost, the note names the server"
dmesg_has "far memory server $SERVER_IP:$PORT" || fail "no message about the lost server"
mark_swap
expect "new workload verifies with the server gone" in_cgroup $W verify --size $(by_kernel 48M 32M)
swap_since_mark
[ "$(fs failed_stores)" -gt 0 ] || fail "no store was refused after the server died"
[ "$disk" -gt 0 ] || fail "refused pages did not reach the swap device"
ok "new swap-outs went to the swap device ($disk sectors)"
# Unloading after the loss frees the connection's resources without the
# server (flush, drain, destroy): both modules go.
[ "$(backend pages)" -eq 0 ] || fail "far memory still counts $(backend pages) pages after their owner exited"
unload_modules rdma
