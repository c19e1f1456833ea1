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
rdma_up $CLIENT_IP
swap_on
load_rdma reconnect_timeout_s=120
cgroup memory.max $(by_kernel 24M 16M)
paused_workload $(by_kernel 48M 32M)
[ "$(backend pages)" -gt 0 ] || fail "no page is held in far memory"
ok "far memory holds $(backend pages) pages; cutting the path to the server for 30 s"
arp -i eth0 -s $SERVER_IP $NOWHERE_MAC || fail "poisoning the ARP entry"
touch /tmp/go
sleep 30
dmesg_has "reconnecting to $SERVER_IP:$PORT" || fail "no 'reconnecting' line in dmesg 30 s into the outage"
dmesg_has "far memory server $SERVER_IP:$PORT" && fail "the far memory was declared lost during the outage (before the server could refuse)"
arp -i eth0 -d $SERVER_IP || fail "restoring the ARP entry"
back=$(uptime_s)
for i in $(seq 60); do
    dmesg_has "far memory server $SERVER_IP:$PORT" && break
    sleep 1
done
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
expect "rmmod fastswap" rmmod fastswap
expect "rmmod fastswap_rdma" rmmod fastswap_rdma
