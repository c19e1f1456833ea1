# farmem-server itself: refuses impossible options, keeps serving as
# clients come and go, frees each client's region, and shuts down cleanly
# on SIGTERM. Runs a second server inside this guest (Soft-RoCE loopback).
. /tests/lib.sh
rdma_up $CLIENT_IP
P=50001
refuse "--size beyond this machine's memory" farmem-server $P --size 999T
refuse "--size that is not whole pages" farmem-server $P --size 1000
refuse "port 0" farmem-server 0
ok "impossible options refused"

farmem-server $P --size 16M --bind $CLIENT_IP > /tmp/srv.log 2>&1 &
srv=$!
await 30 1 grep -q "listening on port $P" /tmp/srv.log || fail "local farmem-server did not start: $(cat /tmp/srv.log)"
expect "two clients come and go" farmem-probe isolation $CLIENT_IP $P
expect "a malformed request is rejected" farmem-probe reject $CLIENT_IP $P bad-magic
expect "two more clients after that" farmem-probe isolation $CLIENT_IP $P
sleep 2
# Each probe client closes its session when done (as the kernel client does
# on unload), so its region is freed at once, not kept for the 600 s
# reconnect linger time.
freed=$(grep -c "closed its session; freed 16 MiB region" /tmp/srv.log)
[ "$freed" -eq 4 ] || fail "expected 4 regions freed, saw $freed: $(cat /tmp/srv.log)"
! grep -q "keeping its region" /tmp/srv.log || fail "a closed client's region was kept: $(cat /tmp/srv.log)"
ok "each client's region was freed when it closed its session"
kill -TERM $srv
wait $srv
rc=$?
cat /tmp/srv.log
[ $rc -eq 0 ] || fail "farmem-server exited with $rc on SIGTERM"
grep -q "shutting down" /tmp/srv.log || fail "no shutdown message"
ok "SIGTERM: clean shutdown"
