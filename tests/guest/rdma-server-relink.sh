# The server guest's RDMA device goes away and comes back (rdma link
# delete and add of rxe0, as a driver reload or a NIC reset would) while
# farmem-server listens on its address: the server logs it, listens again
# once the address can be bound, and then serves a kernel client.
# server-args: --bind 192.0.2.1
# server-log: the RDMA device of the listener on 192.0.2.1:50000 is being removed
# server-log: server-control: rxe0 deleted
# server-log: listening on port 50000 (address 192.0.2.1) again
. /tests/lib.sh
rdma_up $CLIENT_IP
swap_on
server_reachable
echo relink | nc $SERVER_IP 7777 || fail "server control port"
ok "asked the server guest to delete and re-add its RDMA device"
# The server listens again within its backoff (1, 2, 4 ... s).
loaded=
for i in $(seq 20); do
    sleep 3
    if insmod $MOD/fastswap_rdma.ko sport=$PORT sip=$SERVER_IP cip=$CLIENT_IP nq=2 2>/dev/null; then
        loaded=1
        break
    fi
done
[ -n "$loaded" ] || fail "no connection to the server within 60 s of its device coming back"
insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
ok "connected after the server's device came back"
cgroup memory.max $(by_kernel 24M 16M)
expect "workload verifies through the server" in_cgroup $W verify --size $(by_kernel 48M 32M)
[ "$(fs succ_stores)" -gt 0 ] || fail "nothing was stored in far memory"
