# The client's RDMA device goes away (`rdma link delete`, as a driver unbind
# or a NIC reset would) while pages are held in far memory: the removal
# completes instead of blocking, the process whose pages were there either
# verifies or gets SIGBUS (never wrong data), new swap-outs go to the swap
# device and verify, and both modules unload. Another process is swapping
# through far memory at the moment of the removal.
# (A removed device is a loss at once, with no reconnect; the server keeps
# the region for --reconnect-linger, 5 s here, and then frees it.)
# server-args: --reconnect-linger 5s
# server-log: did not reconnect within 5 s; freed 256 MiB region
. /tests/lib.sh
rdma_client
load_rdma
cgroup memory.max 24M
paused_workload 48M
held=$(backend pages)
[ "$held" -gt 0 ] || fail "no page is held in far memory"
# A second process keeps swapping (stores, loads, readahead in flight) while
# the device goes away.
in_cgroup $W verify --size 32M --passes 4 >/tmp/active.out 2>&1 &
active=$!
loads0=$(backend loads)
while [ "$(backend loads)" -lt $((loads0 + 500)) ]; do
    kill -0 $active 2>/dev/null || fail "the swapping process ended early: $(cat /tmp/active.out)"
    sleep 1
done
ok "far memory holds $(backend pages) pages, another process is swapping; deleting rxe0"

# A removal stuck in the kernel sleeps uninterruptibly, so `timeout` could
# not end it: run it in the background and give up on it after a bound far
# above what it needs (the kernel's hung-task detector also reports it).
rdma link delete rxe0 &
rm_pid=$!
waited=0
while kill -0 $rm_pid 2>/dev/null; do
    if [ $waited -ge 60 ]; then
        echo "rdma link delete still blocked; its kernel stack:"
        cat /proc/$rm_pid/stack 2>/dev/null
        fail "rdma link delete rxe0 did not return within 60 s (blocked in the kernel)"
    fi
    sleep 1
    waited=$((waited + 1))
done
wait $rm_pid || fail "rdma link delete rxe0 failed"
ok "rdma link delete rxe0 returned"
rdma link show 2>/dev/null | grep -q rxe0 && fail "rxe0 still listed after its removal"
dmesg_has "far memory server $SERVER_IP:$PORT: RDMA device removed" || fail "no message about the removed device"

# The paused process's swapped-out pages were in far memory: it may not
# read them back wrongly. A mismatch makes verify exit 1.
loads_failed0=$(fs failed_loads)
touch /tmp/go
wait $pid
rc=$?
case $rc in
    0) ok "the paused process verified its data" ;;
    135)
        [ "$(fs failed_loads)" -gt "$loads_failed0" ] || fail "SIGBUS without a failed load"
        ok "the process faulting on a lost page got SIGBUS" ;;
    *) fail "the paused process exited with $rc: expected 0 or SIGBUS (135), never wrong data" ;;
esac
wait $active
rc=$?
case $rc in
    0|135) ok "the process swapping during the removal exited with $rc (0: verified, 135: SIGBUS)" ;;
    *) fail "the process swapping during the removal exited with $rc: $(cat /tmp/active.out)" ;;
esac
[ "$(backend pages)" -eq 0 ] || fail "far memory still counts $(backend pages) pages after their owner exited"

mark_swap
refused0=$(fs failed_stores)
expect "new workload verifies with the device gone" in_cgroup $W verify --size 48M
swap_since_mark
[ "$(fs failed_stores)" -gt "$refused0" ] || fail "no store was refused after the device was removed"
[ "$disk" -gt 0 ] || fail "refused pages did not reach the swap device"
ok "new swap-outs went to the swap device ($disk sectors)"

dmesg_has "unaccounted" && fail "readahead reads outlived the drain"
unload_modules rdma
dmesg_has "disconnected from the far memory server" || fail "no unload message"
# The device's resources were all released: the driver takes a new link.
expect "rxe0 can be added again" rdma link add rxe0 type rxe netdev eth0
expect "rmmod rdma_rxe" rmmod rdma_rxe
sleep 3 # let the server see the disconnects
