# A 4 s link flap while a process faults its pages back from far memory:
# the client rides through it as NVMe over Fabrics does. Transfers fail,
# the backend says it is reconnecting, stores go to the swap device, faults
# on remote pages wait; the client reconnects with the session secret the
# server gave it in its first accept, the server re-attaches it to the same
# region, and the waiting faults complete with the right data: every byte
# verifies, no SIGBUS. Then a flap longer than a short reconnect timeout
# declares the pages lost: SIGBUS, no oops, as without reconnects.
# server-log: re-attached to its region
. /tests/lib.sh
rdma_up $CLIENT_IP
swap_on
load_rdma reconnect_timeout_s=40
cgroup memory.max $(by_kernel 24M 16M)

# Phase 1: a 4 s flap inside the 40 s timeout.
paused_workload $(by_kernel 48M 32M)
[ "$(backend pages)" -gt 0 ] || fail "no page is held in far memory"
ok "far memory holds $(backend pages) pages; flapping eth0 for 4 s"
touch /tmp/go
sleep 1
ip link set eth0 down || fail "link down"
sleep 4
ip link set eth0 up || fail "link up"
wait $pid
rc=$?
[ $rc -eq 0 ] || fail "the workload exited with $rc through a 4 s flap (135 is SIGBUS)"
ok "every byte verified through a 4 s link flap"
dmesg_has "reconnecting to $SERVER_IP:$PORT" || fail "no 'reconnecting' line in dmesg"
dmesg_has "reconnected to $SERVER_IP:$PORT" || fail "no 'reconnected' line in dmesg"
dmesg_has "far memory server $SERVER_IP:$PORT" && fail "the far memory was declared lost during a 4 s flap"
[ "$(cat /sys/kernel/mm/fastswap/state)" = active ] || fail "state $(cat /sys/kernel/mm/fastswap/state) after reconnecting"
ok "dmesg: $(dmesg | grep -m1 "reconnected to $SERVER_IP")"
expect "a new workload verifies through the reconnected far memory" in_cgroup $W verify --size $(by_kernel 48M 32M)

# Phase 2: a 50 s outage, longer than the 40 s timeout: the pages are lost.
rm -f /tmp/go /tmp/go.ready.*
paused_workload $(by_kernel 48M 32M)
[ "$(backend pages)" -gt 0 ] || fail "no page is held in far memory before the long outage"
touch /tmp/go
sleep 1
ip link set eth0 down || fail "link down"
sleep 50
ip link set eth0 up || fail "link up"
wait $pid
rc=$?
[ $rc -eq 135 ] || fail "after an outage longer than the timeout the workload exited with $rc, expected SIGBUS (135)"
ok "an outage longer than reconnect_timeout_s: SIGBUS"
dmesg_has "far memory server $SERVER_IP:$PORT" || fail "no loss declared after the timeout"
[ "$(cat /sys/kernel/mm/fastswap/state)" = lost ] || fail "state $(cat /sys/kernel/mm/fastswap/state) after the timeout"
expect "new workload verifies with the far memory lost" in_cgroup $W verify --size $(by_kernel 48M 32M)
expect "rmmod fastswap" rmmod fastswap
expect "rmmod fastswap_rdma" rmmod fastswap_rdma
