# Unloading fastswap.ko while a workload churns through swap: short
# workloads run back to back in a small cgroup while fastswap.ko is removed
# and loaded again whenever it lets go. Every byte verifies, and after every
# successful rmmod frontswap and the backend hold nothing.
# fastswap.ko's test_unload_delay_ms makes each unload sleep after the
# module is marked as going and before it leaves frontswap, so the next
# workload's stores race the unload every time: they must be refused (and go
# to the swap device) rather than be taken by a module that is going away.
. /tests/lib.sh
swap_on
FS_ARGS=test_unload_delay_ms=1000
insmod $MOD/fastswap_dram.ko || fail "insmod fastswap_dram.ko"
insmod $MOD/fastswap.ko $FS_ARGS || fail "insmod fastswap.ko $FS_ARGS"
cgroup memory.max $(by_kernel 32M 16M)
size=$(by_kernel 48M 24M)
rm -f /tmp/stop /tmp/bad
(
    i=0
    while [ ! -f /tmp/stop ]; do
        in_cgroup $W verify --size $size --seed $i >/dev/null || { echo "workload $i read wrong data"; touch /tmp/bad; }
        i=$((i + 1))
    done
    echo "churn: $i workloads"
) &
churn=$!
# At least 90 s (30 on the slower debug kernel), and on until 3 unloads
# have happened, for at most 5 minutes.
start=$(uptime_s)
unloads=0 raced=0 tries=0 end=$((start + $(by_kernel 90 30))) cap=$((start + 300))
while { [ "$(uptime_s)" -lt $end ] || [ $unloads -lt 3 ]; } && [ "$(uptime_s)" -lt $cap ] && [ ! -f /tmp/bad ]; do
    tries=$((tries + 1))
    refused=$(fs failed_stores)
    if rmmod fastswap 2>/dev/null; then
        unloads=$((unloads + 1))
        [ "$(fs failed_stores)" -eq "$refused" ] || raced=$((raced + 1))
        held=$(fs curr_pages) pool=$(backend pages)
        [ "$held" -eq 0 ] || { touch /tmp/stop; fail "after rmmod #$unloads frontswap still counts $held pages"; }
        [ "$pool" -eq 0 ] || { touch /tmp/stop; fail "after rmmod #$unloads the backend still holds $pool pages"; }
        insmod $MOD/fastswap.ko $FS_ARGS || { touch /tmp/stop; fail "insmod fastswap.ko after rmmod #$unloads"; }
    fi
    usleep 200000
done
touch /tmp/stop
wait $churn
[ ! -f /tmp/bad ] || fail "a workload read wrong data while fastswap.ko came and went"
[ $unloads -ge 3 ] || fail "only $unloads of $tries rmmod attempts succeeded (the test needs several)"
[ $raced -ge 1 ] || fail "no store raced any of the $unloads unloads (the test did not reach the race)"
ok "$unloads unloads in $tries attempts, $raced with stores refused while the module was going; every workload verified; nothing held after each unload"
