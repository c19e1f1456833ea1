# Joins are bound to the client's first peer. The kernel client's id is
# read off the wire (farmem-probe sniff-id, as anyone on the fabric could);
# a join presenting it from another address is refused with a reason, a
# join from the client's own address is refused because the client has all
# its queues, a probe client shows the same while it is still joining, and
# the kernel client keeps verifying its data.
# server-log: all 6 queues joined; the client takes no new ones
# server-log: rejected connection from 192.0.2.3
# server-log: queue joins from another address than the client's first queue
# server-log: client has had all its queues; it takes no new ones
# (server-log lines are matched as written: 192.0.2.3 is OTHER_IP, scripts/lib.sh.)
. /tests/lib.sh
rdma_up $CLIENT_IP
ip addr add "$OTHER_IP/24" dev eth0 || fail "second address"
swap_on
server_reachable
farmem-probe sniff-id eth0 120 > /tmp/id 2>&1 &
sniffer=$!
sleep 1
load_rdma
wait $sniffer || fail "no fastswap connect request seen on eth0: $(cat /tmp/id)"
id=$(cut -d' ' -f1 /tmp/id)
nq=$(sed -n 's/.* of \([0-9]*\),.*/\1/p' /tmp/id)
[ -n "$id" ] && [ "$nq" = 6 ] || fail "unexpected sniffer output: $(cat /tmp/id)"
ok "the kernel client's connect request, seen on the wire: $(cat /tmp/id)"

cgroup memory.max $(by_kernel 24M 16M)
in_cgroup $W verify --size $(by_kernel 48M 32M) &
pid=$!
J="farmem-probe join $SERVER_IP $PORT --id $id --queues $nq"
expect "the kernel client's id from another address is refused" \
    $J --queue 1 --from "$OTHER_IP" --expect-reject "another address"
expect "the kernel client's id from its own address is refused (all its queues are in)" \
    $J --queue 1 --from $CLIENT_IP --expect-reject "takes no new ones"
expect "a probe client's id from another address is refused while it joins" \
    farmem-probe impostor $SERVER_IP $PORT --from "$OTHER_IP"
expect "kernel client's data verifies alongside" wait $pid
[ "$(fs succ_stores)" -gt 0 ] || fail "the kernel client swapped nothing out"
dmesg_has "pages held there are lost" && fail "the kernel client lost its server"
ok "the kernel client kept its server"
