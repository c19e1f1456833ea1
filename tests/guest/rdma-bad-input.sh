# Bad parameters, an unreachable server, nothing listening, and malformed
# connect requests: each a clear error in bounded time; the server keeps
# serving the next good client.
# server-log: rejected connection from 192.0.2.2: not a fastswap client (bad magic)
# server-log: reserved bytes are not zero
# (server-log lines are matched as written: 192.0.2.2 is CLIENT_IP, scripts/lib.sh.)
. /tests/lib.sh
rdma_client
R="insmod $MOD/fastswap_rdma.ko"
refuse "sip=abc" $R sport=$PORT sip=abc cip=$CLIENT_IP
dmesg_has 'invalid sip="abc"' || fail "no message for sip=abc"
refuse "missing sip" $R sport=$PORT cip=$CLIENT_IP
dmesg_has "missing sip=" || fail "no message for a missing sip"
refuse "sport=0" $R sport=0 sip=$SERVER_IP cip=$CLIENT_IP
dmesg_has "invalid sport=0" || fail "no message for sport=0"
refuse "nq=0" $R sport=$PORT sip=$SERVER_IP cip=$CLIENT_IP nq=0
refuse "nq=99" $R sport=$PORT sip=$SERVER_IP cip=$CLIENT_IP nq=99
dmesg_has "invalid nq=99: expected 1 to 2" || fail "no message for nq=99"
ok "bad parameters rejected with a message"

t0=$(uptime_s)
refuse "unreachable server" $R sport=$PORT sip=$NOWHERE_IP cip=$CLIENT_IP
t=$(( $(uptime_s) - t0 ))
[ $t -le 30 ] || fail "unreachable server took ${t}s to fail"
dmesg | grep -E "cannot resolve $NOWHERE_IP|$NOWHERE_IP:$PORT unreachable|timed out" | tail -2
ok "unreachable server fails in ${t}s"

t0=$(uptime_s)
refuse "nothing listening" $R sport=$((PORT + 1)) sip=$SERVER_IP cip=$CLIENT_IP
t=$(( $(uptime_s) - t0 ))
[ $t -le 30 ] || fail "nothing listening took ${t}s to fail"
dmesg_has "refused the connection" || fail "no message for nothing listening"
ok "nothing listening fails in ${t}s"

for kind in bad-magic bad-version short bad-queue reserved; do
    expect "server rejects a $kind connect request" farmem-probe reject $SERVER_IP $PORT $kind
done

# A server whose accept is flawed (farmem-probe bad-server, on this guest:
# Soft-RoCE loops back to its own address): the client refuses to use the
# region, says why, and insmod fails.
BAD=$((PORT + 2))
for case in "bad-version:unsupported protocol version" "status:status is not ok" \
    "reserved:reserved bytes are not zero" "tiny:the region is smaller than a page" \
    "overflow:the region's end overflows the address space"; do
    kind=${case%%:*} why=${case#*:}
    farmem-probe bad-server $BAD $kind --secs 120 > /tmp/bad-server.log 2>&1 &
    bs=$!
    await 40 0.5 grep -q listening /tmp/bad-server.log || fail "bad-server did not start: $(cat /tmp/bad-server.log)"
    refuse "client refuses an accept with $kind" $R sport=$BAD sip=$CLIENT_IP cip=$CLIENT_IP nq=1
    kill $bs; wait $bs 2>/dev/null
    dmesg_has "refusing the accept of server $CLIENT_IP:$BAD: $why" || fail "no message for an accept with $kind (want: $why)"
done
ok "flawed accepts refused with their reasons"

load_rdma
ok "server still serves a good client after the malformed requests"
cgroup memory.max 16M
expect "workload verifies" in_cgroup $W verify --size 32M
refuse "rmmod fastswap_rdma while fastswap uses it" rmmod fastswap_rdma
