# The client dies while far memory holds its pages: the harness kills the
# client guest's QEMU (SIGKILL, as a power loss: no disconnect reaches the
# server). The server's keep-alives go unanswered; it logs the loss within
# the grace period and keeps the region for a reconnect (--reconnect-linger
# 600 s). A second client guest (phase 2, as after a reboot, with a new
# client id) then gets the memory: the budget holds one region only, and
# the dead client's lingering session is removed to make room for it
# rather than refusing it for the linger time.
# server-args: --memory 300M --keepalive 2s --dead-client-grace 10s --reconnect-linger 600s
# server-log: keep-alive every 2 s, a client silent for 10 s is dead
# server-log: keep-alive failed
# server-log: declared dead: no keep-alive answered for
# server-log: keeping its region for 600 s for a reconnect
# server-log: lingering session (no queue, kept for a reconnect) removed to make room for new client
# server-log: freed 256 MiB region (0 of 300 MiB in use)
. /tests/lib.sh
rdma_client

if [ "$(cmdline_arg fsphase)" = 2 ]; then
    server_reachable
    # This guest has the dead one's address and GID, and Soft-RoCE hands
    # out the same QP numbers after a boot: a connect request now would
    # make the server's RDMA CM drop the dead client's connection with
    # that QP number as stale (a real path, but not the one under test).
    # So wait until the server's keep-alives must have found the loss (the
    # guest was started right after the kill: interval + grace + retries
    # is about 13 s from it).
    while [ "$(uptime_s)" -lt 15 ]; do sleep 1; done
    # Until the server declared the dead client dead, its budget refuses
    # us (a live client is never removed): try again for a while.
    limit=$(by_kernel 60 120)
    t0=$(uptime_s)
    until insmod $MOD/fastswap_rdma.ko sport=$PORT sip=$SERVER_IP cip=$CLIENT_IP nq=2; do
        t=$(( $(uptime_s) - t0 ))
        [ $t -lt "$limit" ] || fail "no far memory after ${t}s: the server kept the dead client's region"
        sleep 3
    done
    ok "the new client got far memory after $(( $(uptime_s) - t0 ))s"
    dmesg_has "ctrl is ready for reqs" || fail "no 'ctrl is ready for reqs' in dmesg"
    insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
    cgroup memory.max $(by_kernel 24M 16M)
    expect "a workload verifies through the freed far memory" in_cgroup $W verify --size $(by_kernel 48M 32M)
    [ "$(fs succ_stores)" -gt 0 ] || fail "nothing was stored in far memory"
    exit 0
fi

paused_in_far_memory
ok "far memory holds $(backend pages) pages; asking the harness to kill this guest"
echo "FSTEST-KILL-CLIENT"
sleep 600
fail "this guest was not killed"
