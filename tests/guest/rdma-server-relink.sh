# The server guest's RDMA device goes away and comes back (`rdma link
# delete rxe0`, then `rdma link add`, as a driver reload or a NIC reset
# would) while farmem-server listens on its address (--bind), a kernel
# client holds pages in its region and a probe client's session lingers
# for a reconnect. Soft-RoCE cannot take a device away from a process
# (no disassociate_ucontext), so the deletion waits until every verbs
# context on the device is closed: farmem-server must free everything it
# holds there. The deletion returns within 30 s and the server guest's
# kernel reports no hung task; the server frees both regions, listens
# again once the device is back, and a new load of the kernel client gets
# far memory and verifies a workload through it. The old kernel client
# loses its far memory (its session is gone), and its paused process
# verifies or gets SIGBUS, never wrong data.
# A second farmem-server in the server guest listens on every address
# (no --bind, port 50001) and only keeps a lingering probe session when
# the device goes: no id of it is on the device, so no RDMA CM event tells
# it; it finds the removal by itself, frees the region and lets the device
# go (the deletion waits for both servers), and serves a new probe client
# once the device is back.
# server-args: --bind 192.0.2.1
# server-log: server-ctl: rdma link delete rxe0 returned in
# server-log: the RDMA device of the listener on 192.0.2.1:50000 is being removed
# server-log: keeping its region for 600 s for a reconnect
# server-log: the RDMA device rxe0 was removed: 
# server-log: freed 2 region(s)
# server-log: freed 256 MiB region: its RDMA device rxe0 was removed
# server-log: RDMA device rxe0 released
# server-log: listening on port 50000 (address 192.0.2.1) again
# server-log: server-ctl: hung tasks reported: 0
# server-log: client 8fc1808e from 192.0.2.2: freed 256 MiB region: its RDMA device rxe0 was removed (a lingering session
# server-log: server-ctl: second farmem-server listening on port 50001
# server-log: client 4cbb4d93 from 192.0.2.2: freed 64 MiB region: its RDMA device rxe0 was removed (a lingering session
# server-log: client 12405454 from 192.0.2.2: all 1 queues joined
. /tests/lib.sh
rdma_up $CLIENT_IP
swap_on
server_reachable
server_ctl hung-tasks >/dev/null || fail "no answer from the server guest's control port"
out=$(server_ctl second-server) || fail "no answer from the server guest to second-server"
case $out in *"listening on port 50001"*) ;; *) fail "$out" ;; esac

# A lingering session: a probe client with all its queues (one) leaves
# without closing its session; the server keeps its region for a reconnect.
farmem-probe join $SERVER_IP $PORT --id 5e1ecafe --queue 0 --queues 1 || fail "probe client"
farmem-probe join $SERVER_IP 50001 --id 5e1ec0de --queue 0 --queues 1 || fail "probe client of the second server"
load_rdma reconnect_timeout_s=120
cgroup memory.max $(by_kernel 24M 16M)
paused_workload $(by_kernel 48M 32M)
[ "$(backend pages)" -gt 0 ] || fail "no page is held in far memory"
ok "far memory holds $(backend pages) pages; deleting the server's RDMA device"

out=$(server_ctl rdma-link-delete 70) || fail "no answer from the server guest to rdma-link-delete"
echo "$out"
case $out in
*"returned in "*) ;;
*) fail "rdma link delete rxe0 on the server did not return within 45 s" ;;
esac
secs=$(echo "$out" | sed -n 's/.*returned in \([0-9]*\)\..*/\1/p' | head -1)
[ -n "$secs" ] && [ "$secs" -lt 30 ] || fail "the server's rdma link delete took ${secs:-?} s (bound: 30 s)"
case $out in *"(exit 0)"*) ;; *) fail "the server's rdma link delete failed: $out" ;; esac
ok "the server's RDMA device was deleted in $secs s"
sleep 5
out=$(server_ctl rdma-link-add) || fail "no answer from the server guest to rdma-link-add"
echo "$out"
case $out in *"rdma link add rxe0: done"*) ;; *) fail "the server could not add rxe0 again: $out" ;; esac
out=$(server_ctl hung-tasks) || fail "no answer from the server guest to hung-tasks"
case $out in *"hung tasks reported: 0"*) ;; *) fail "the server guest's kernel reported hung tasks: $out" ;; esac
ok "rxe0 is back on the server; $out"

# The old client's session went with the device: once the server listens
# again, the reconnect is refused (the session is gone) and the far memory
# is lost.
t0=$(uptime_s)
while [ "$(cat /sys/kernel/mm/fastswap/state)" != lost ]; do
    [ $(($(uptime_s) - t0)) -lt 150 ] || fail "the old client's far memory is still $(cat /sys/kernel/mm/fastswap/state) 150 s after the server's device came back"
    sleep 1
done
ok "the old client lost its far memory $(($(uptime_s) - t0)) s after the device came back: $(dmesg | grep -m1 "far memory server $SERVER_IP")"
touch /tmp/go
wait $pid
rc=$?
case $rc in
0) ok "the paused process verified its data" ;;
135) ok "the paused process faulting on a lost page got SIGBUS" ;;
*) fail "the paused process exited with $rc: expected 0 or SIGBUS (135), never wrong data" ;;
esac
expect "rmmod fastswap" rmmod fastswap
expect "rmmod fastswap_rdma" rmmod fastswap_rdma

# A new client load: the server serves it on the re-added device.
dmesg -C
t0=$(uptime_s)
until insmod $MOD/fastswap_rdma.ko sport=$PORT sip=$SERVER_IP cip=$CLIENT_IP nq=2; do
    [ $(($(uptime_s) - t0)) -lt 90 ] || fail "no far memory from the server within 90 s of its device coming back"
    sleep 3
done
dmesg_has "ctrl is ready for reqs" || fail "no 'ctrl is ready for reqs' in dmesg"
insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
[ "$(cat /sys/kernel/mm/fastswap/state)" = active ] || fail "state $(cat /sys/kernel/mm/fastswap/state) after the new load"
ok "a new client load got far memory after $(($(uptime_s) - t0)) s"
stored0=$(fs succ_stores)
expect "a workload verifies through the server's re-added device" in_cgroup $W verify --size $(by_kernel 48M 32M)
[ "$(fs succ_stores)" -gt "$stored0" ] || fail "nothing was stored in far memory"
[ "$(backend loads)" -gt 0 ] || fail "nothing was loaded from far memory"
expect "rmmod fastswap" rmmod fastswap
expect "rmmod fastswap_rdma" rmmod fastswap_rdma
# The second server, which listens on every address, serves again too.
t0=$(uptime_s)
until farmem-probe join $SERVER_IP 50001 --id 5e1ec0df --queue 0 --queues 1; do
    [ $(($(uptime_s) - t0)) -lt 30 ] || fail "the second server serves no client after its device came back"
    sleep 3
done
ok "the second server (every address) served a new client"
