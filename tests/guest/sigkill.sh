# Processes killed with SIGKILL in the middle of heavy swapping: nothing
# stays held by frontswap or the backend, and a new workload verifies.
. /tests/lib.sh
swap_on
load_dram
cgroup memory.max $(by_kernel 48M 24M)
in_cgroup $W verify --size $(by_kernel 192M 64M) --procs 4 --passes 3 >/dev/null 2>&1 &
pid=$!
i=0
while [ "$(fs loads)" -lt $(by_kernel 2000 500) ]; do
    kill -0 $pid 2>/dev/null || fail "workload ended before it was killed"
    i=$((i + 1)); [ $i -lt 1200 ] || fail "no heavy swapping after 600 s"
    usleep 500000
done
ok "killing the workload at $(fs succ_stores) stores, $(fs loads) loads, $(fs curr_pages) held"
echo 1 > $CG/cgroup.kill || fail "cgroup.kill"
wait $pid
for i in $(seq 20); do [ "$(fs curr_pages)" -eq 0 ] && break; sleep 1; done
[ "$(fs curr_pages)" -eq 0 ] || fail "frontswap still holds $(fs curr_pages) pages after the kill"
[ "$(backend pages)" -eq 0 ] || fail "backend still holds $(backend pages) pages after the kill"
expect "a new workload verifies" in_cgroup $W verify --size $(by_kernel 96M 32M)
ok "nothing held after SIGKILL"
