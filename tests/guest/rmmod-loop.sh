# Unloading fastswap.ko while a workload churns through swap: short
# workloads run back to back in a small cgroup while fastswap.ko is removed
# and loaded again whenever it lets go. Every byte verifies, and after every
# successful rmmod frontswap and the backend hold nothing.
. /tests/lib.sh
swap_on
load_dram
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
unloads=0 tries=0 end=$(($(uptime_s) + $(by_kernel 90 120)))
while [ "$(uptime_s)" -lt $end ] && [ ! -f /tmp/bad ]; do
    tries=$((tries + 1))
    if rmmod fastswap 2>/dev/null; then
        unloads=$((unloads + 1))
        held=$(fs curr_pages) pool=$(backend pages)
        [ "$held" -eq 0 ] || { touch /tmp/stop; fail "after rmmod #$unloads frontswap still counts $held pages"; }
        [ "$pool" -eq 0 ] || { touch /tmp/stop; fail "after rmmod #$unloads the backend still holds $pool pages"; }
        insmod $MOD/fastswap.ko || { touch /tmp/stop; fail "insmod fastswap.ko after rmmod #$unloads"; }
    fi
    usleep 200000
done
touch /tmp/stop
wait $churn
[ ! -f /tmp/bad ] || fail "a workload read wrong data while fastswap.ko came and went"
[ $unloads -ge 3 ] || fail "only $unloads of $tries rmmod attempts succeeded (the test needs several)"
ok "$unloads unloads in $tries attempts; every workload verified; nothing held after each unload"
