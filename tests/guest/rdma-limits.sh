# Resource limits against a flood: farmem-probe presents fake client ids
# that each join only queue 0 of 6 (half-open), first from this address and
# then from a second one. The per-address limit stops the first flood, the
# memory budget the second; the regions the server hands out never add up
# to more than its budget; it disconnects each half-open client at its join
# deadline and frees its region; a kernel client connecting afterwards gets
# its region and verifies its data.
# server-args: --memory 768M --max-clients 8 --max-clients-per-addr 2 --join-deadline 30s
# server-log: too many clients from this address
# server-log: server's memory budget is used up
# server-log: only 1 of 6 queues joined within 30 s; disconnected, freed 256 MiB region
. /tests/lib.sh
rdma_up $CLIENT_IP
ip addr add "$OTHER_IP/24" dev eth0 || fail "second address"
swap_on
server_reachable
FLOOD="farmem-probe flood $SERVER_IP $PORT --queues 6 --max-bytes 768M --expect-release 120"

# From this address: 2 accepted (the per-address limit), the rest refused.
$FLOOD --from $CLIENT_IP --clients 5 --expect-accepted 2 \
    --expect-reason "too many clients from this address" > /tmp/flood-a.log 2>&1 &
a=$!
await 90 1 grep -q "^flood: .* accepted" /tmp/flood-a.log || fail "first flood did not get its answers: $(cat /tmp/flood-a.log)"
cat /tmp/flood-a.log
# From the second address, while the first flood's clients are still
# there: 1 accepted (3 regions of 256 MiB fill the 768 MiB budget).
$FLOOD --from "$OTHER_IP" --clients 5 --expect-accepted 1 \
    --expect-reason "memory budget is used up" > /tmp/flood-b.log 2>&1
b=$?
cat /tmp/flood-b.log
[ $b -eq 0 ] || fail "second flood: the server did not hold its budget or did not release the half-open clients"
wait $a
a=$?
cat /tmp/flood-a.log
[ $a -eq 0 ] || fail "first flood: the server did not hold its per-address limit or did not release the half-open clients"
mib=$(sed -n 's/^flood: .* accepted (\([0-9]*\) MiB).*/\1/p' /tmp/flood-a.log /tmp/flood-b.log | awk '{ s += $1 } END { print s + 0 }')
[ "$mib" -le 768 ] || fail "the floods got $mib MiB, more than the 768 MiB budget"
ok "the floods got $mib MiB of the 768 MiB budget; every half-open client was released at its deadline"

# Every region of the flood is free again: a real client gets one.
load_rdma
cgroup memory.max $(by_kernel 24M 16M)
expect "kernel client's data verifies after the flood" in_cgroup $W verify --size $(by_kernel 48M 32M)
[ "$(fs succ_stores)" -gt 0 ] || fail "the kernel client swapped nothing out"
