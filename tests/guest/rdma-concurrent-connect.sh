# Registering a region does not hold up other clients: while farmem-probe's
# clients keep the server registering 320 MiB regions one after another,
# the kernel client connects all its queues within its connect timeout and
# verifies its data, and every probe client gets its region too. (Budget:
# the kernel client's region and one probe client's, 640 of 800 MiB. The
# server also keeps 256 MiB of its 1536 MiB guest's available memory in
# reserve, counting regions still being registered: with 448 MiB regions
# the kernel client's region missed by 6 MiB once, so they are smaller.)
# server-args: --size 320M --memory 800M
# server-log: registered 320 MiB region
. /tests/lib.sh
rdma_client
server_reachable
# (Debug kernel: 60 s of churn; the kernel client connects within 30 s.)
farmem-probe churn $SERVER_IP $PORT --clients 4 --secs $(by_kernel 120 60) --hold 1 > /tmp/churn.log 2>&1 &
churn=$!
sleep 1 # the first probe client's registration is under way
t0=$(uptime_s)
load_rdma
t=$(( $(uptime_s) - t0 ))
ok "kernel client connected its 6 queues in ${t}s beside the probe's registrations"
[ $t -le 30 ] || fail "the kernel client took ${t}s to connect"
wait $churn
rc=$?
cat /tmp/churn.log
[ $rc -eq 0 ] || fail "probe clients failed beside the kernel client"
ok "probe clients connected while the kernel client did"
cgroup memory.max $(by_kernel 24M 16M)
expect "kernel client's data verifies" in_cgroup $W verify --size $(by_kernel 48M 32M)
