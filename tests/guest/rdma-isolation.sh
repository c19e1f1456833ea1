# Several clients on one server: the kernel client verifies its data while
# two userspace clients each use their own region, and one using the
# other's address and key gets a remote access error.
# server-log: client 494fe6b1 from 192.0.2.2: registered
# server-log: client 28dea1b0 from 192.0.2.2: registered
# server-log: closed its session; freed
# (server-log lines are matched as written: 192.0.2.2 is CLIENT_IP, scripts/lib.sh.)
. /tests/lib.sh
rdma_client
load_rdma
cgroup memory.max $(by_kernel 24M 16M)
in_cgroup $W verify --size $(by_kernel 48M 32M) &
pid=$!
expect "userspace clients are isolated from each other" farmem-probe isolation $SERVER_IP $PORT
expect "kernel client's data verifies alongside them" wait $pid
[ "$(fs succ_stores)" -gt 0 ] || fail "the kernel client swapped nothing out"
