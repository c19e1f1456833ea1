# The server frees a client's region while the client is cut off (the
# client is declared dead after --dead-client-grace, then --reconnect-linger
# passes). When the path is back, the server answers the reconnect with
# "the session is gone": the client declares the far memory lost at once
# instead of retrying until reconnect_timeout_s (120 s here), and the
# waiting fault gets SIGBUS within seconds of the path coming back.
# server-args: --keepalive 1s --dead-client-grace 3s --reconnect-linger 2s
# server-log: did not reconnect within 2 s; freed 256 MiB region
# server-log: the session is gone and its region freed
. /tests/lib.sh
rdma_client
paused_in_far_memory reconnect_timeout_s=120
ok "far memory holds $(backend pages) pages; cutting the path to the server for 30 s"
cut_path
touch /tmp/go
sleep 30
dmesg_has "reconnecting to $SERVER_IP:$PORT" || fail "no 'reconnecting' line in dmesg 30 s into the outage"
dmesg_has "far memory server $SERVER_IP:$PORT" && fail "the far memory was declared lost during the outage (before the server could refuse)"
restore_path
back=$(uptime_s)
await 60 1 dmesg_has "far memory server $SERVER_IP:$PORT"
took=$(( $(uptime_s) - back ))
dmesg_has "far memory server $SERVER_IP:$PORT: the server refused to re-attach" ||
    fail "no loss declared for the refused session within 60 s of the path coming back"
[ $took -le 40 ] || fail "the refused session was declared lost only $took s after the path came back"
ok "lost $took s after the path came back: $(dmesg | grep -m1 "far memory server $SERVER_IP")"
wait $pid
rc=$?
[ $rc -eq 135 ] || fail "the process with lost pages exited with $rc, expected SIGBUS (135)"
ok "process faulting on a lost page got SIGBUS"
[ "$(cat /sys/kernel/mm/fastswap/state)" = lost ] || fail "state $(cat /sys/kernel/mm/fastswap/state) after the loss"
expect "new workload verifies with the far memory lost" in_cgroup $W verify --size $(by_kernel 48M 32M)
unload_modules rdma
