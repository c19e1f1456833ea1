# memory.high on a parent cgroup holds with reclaim offload as without it:
# parent memory.high=100M, two children at 80M each, each child running a
# 96 MiB workload (debug kernel: 64M, 51M, 61 MiB). The parent's peak must stay within the same margin above
# its memory.high (1/16 of it) whether reclaim runs in the tasks or on the
# offload CPU.
. /tests/lib.sh
swap_on
load_dram
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
# run_tree NAME: builds the tree, runs both children, prints the parent's peak in MiB.
H=$(by_kernel 100 64) C=$(by_kernel 80 51) D=$(by_kernel 96 61)
run_tree() {
    P=/sys/fs/cgroup/$1
    mkdir $P && echo +memory > $P/cgroup.subtree_control && echo ${H}M > $P/memory.high || fail "cgroup $P"
    for c in a b; do
        mkdir $P/$c && echo ${C}M > $P/$c/memory.high || fail "cgroup $P/$c"
    done
    sh -c "echo \$\$ > $P/a/cgroup.procs && exec $W verify --size ${D}M --seed 3" >/dev/null &
    a=$!
    sh -c "echo \$\$ > $P/b/cgroup.procs && exec $W verify --size ${D}M --seed 4" >/dev/null &
    b=$!
    wait $a || fail "$1: child a's data did not verify"
    wait $b || fail "$1: child b's data did not verify"
    echo $(($(cat $P/memory.peak) >> 20))
}
echo -1 > /proc/sys/vm/memcg_reclaim_offload_cpu
stock=$(run_tree stock)
echo 1 > /proc/sys/vm/memcg_reclaim_offload_cpu
offload=$(run_tree offload)
echo -1 > /proc/sys/vm/memcg_reclaim_offload_cpu
echo "parent peak: stock reclaim $stock MiB, offloaded reclaim $offload MiB (memory.high $H MiB)"
# The offloaded path lets a task run up to 1/16 past memory.high before it
# reclaims itself; the stock path throttles at about the same point.
margin=$((H / 16 + 1))
[ "$stock" -le $((H + margin)) ] || fail "stock reclaim let the parent reach $stock MiB"
[ "$offload" -le $((H + margin)) ] || fail "offloaded reclaim let the parent reach $offload MiB (stock: $stock MiB)"
ok "parent stayed within $margin MiB of memory.high both ways"
