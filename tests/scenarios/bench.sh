# The benchmark, run in the client guest of the two-guest testbed (the
# server guest exports a RAM disk over NVMe-oF/RDMA and NBD beside
# farmem-server). For each swap backend: swap-out rate, swap-in fault
# latency (random and sequential, 1 and 2 threads), and the slowdown of three
# applications at several local-memory ratios. Prints one "BENCH {json}"
# line per run and "bench: ..." progress lines; scripts/bench collects them.
. /tests/lib.sh
arg() { sed -n "s/.*bench_$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
LAT_SIZE=$(arg size) ROUNDS=$(arg rounds) APP_SIZE=$(arg app_size)
RATIOS=$(arg ratios | tr , ' ') BACKENDS=$(arg backends | tr , ' ')
APP_ROUNDS=$(arg app_rounds) OFFLOAD_ROUNDS=$(arg offload_rounds)
APPS="quicksort kvstore bfs"
NQN=nqn.2026-11.org.fastswap:swap
T0=$(uptime_s)
say() { echo "bench: [$(($(uptime_s) - T0))s] $*"; }
emit() { echo "BENCH $1"; }

# fresh_cgroup: a new work cgroup with no limit (memory.peak starts at 0).
fresh_cgroup() {
    rmdir $CG 2>/dev/null
    cgroup memory.high max
}

# app NAME ARGS...: one application run pinned to CPU 0 (CPU 1 is the
# reclaim offload CPU). With --limit CG:BYTES the application runs its
# compute phase with memory.high at BYTES (see workloads/src/limit.rs). A
# wrong result fails the bench; a run over 15 minutes is reported, skipped.
app() {
    local name=$1 out rc
    shift
    out=$(in_cgroup timeout 900 taskset -c 0 $W app "$name" --size "$APP_SIZE" "$@")
    rc=$?
    if [ $rc = 0 ]; then
        emit "$out"
    elif [ $rc = 124 ] || [ $rc = 143 ]; then
        say "WARNING: $name $* timed out, skipped"
    else
        fail "$name $* (exit $rc): $out"
    fi
}

faultlat() { # faultlat BACKEND ORDER THREADS
    local i out
    for i in $(seq "$ROUNDS"); do
        fresh_cgroup
        out=$(in_cgroup $W faultlat --size "$LAT_SIZE" --seed "$i" --order "$2" --threads "$3" \
            --reclaim $CG/memory.reclaim --tag backend="$1" --tag round="$i") || fail "faultlat $*"
        emit "$out"
    done
}

# Working sets: each application's peak memory with no limit.
swapoff -a 2>/dev/null
for a in $APPS; do
    for i in 1 2 3; do
        fresh_cgroup
        app "$a" --seed "$i" --tag backend=none --tag local_ratio=1
        [ $i = 1 ] && peak=$(cat $CG/memory.peak)
    done
    eval "peak_$a=$peak"
    say "$a working set $((peak >> 10)) KiB"
done

offload() { echo "$1" > /proc/sys/vm/memcg_reclaim_offload_cpu || fail "offload sysctl $1"; }
measure() { # measure BACKEND: everything for the backend now swapped to
    local b=$1 a r peak
    say "$b: swap-in latency (random, sequential, 2 threads)"
    faultlat "$b" random 1
    faultlat "$b" seq 1
    faultlat "$b" random 2
    for r in $RATIOS; do
        for a in $APPS; do
            eval "peak=\$peak_$a"
            say "$b: $a at local ratio $r"
            high=$(awk -v p="$peak" -v r="$r" 'BEGIN { printf "%d", p * r }')
            rounds=$APP_ROUNDS
            # fastswap at 50%: reclaim offload to CPU 1 on and off, in
            # alternating runs (more rounds: the difference can be small).
            case $b@$r in fastswap-*@0.5) rounds=$OFFLOAD_ROUNDS ;; esac
            for i in $(seq "$rounds"); do
                fresh_cgroup
                app "$a" --seed "$i" --limit "$CG:$high" --tag backend="$b" --tag local_ratio="$r" --tag offload=off
                case $b@$r in fastswap-*@0.5)
                    offload 1
                    fresh_cgroup
                    app "$a" --seed "$i" --limit "$CG:$high" --tag backend="$b" --tag local_ratio="$r" --tag offload=on
                    offload -1 ;;
                esac
            done
        done
    done
    say "$b: done"
}

rdma_up $CLIENT_IP
server_reachable
for b in $BACKENDS; do
    case $b in
    disk)
        swap_on
        measure disk
        swapoff /dev/vda || fail "swapoff disk" ;;
    zram)
        modprobe zram num_devices=1 || fail "modprobe zram"
        echo lz4 > /sys/block/zram0/comp_algorithm
        echo 512M > /sys/block/zram0/disksize
        mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 || fail "zram swapon"
        measure zram
        swapoff /dev/zram0 || fail "swapoff zram" ;;
    nbd)
        modprobe nbd || fail "modprobe nbd"
        out=$(nbd-client -N swap $SERVER_IP 10809 /dev/nbd0 -b 4096 -swap 2>&1) \
            || fail "nbd-client: cannot attach the server's export: $out"
        mkswap /dev/nbd0 >/dev/null && swapon /dev/nbd0 || fail "nbd swapon"
        measure nbd
        swapoff /dev/nbd0 || fail "swapoff nbd"
        nbd-client -d /dev/nbd0 >/dev/null 2>&1 ;;
    nvmeof-rdma)
        modprobe nvme-rdma || fail "modprobe nvme-rdma"
        echo "transport=rdma,traddr=$SERVER_IP,trsvcid=4420,nqn=$NQN" > /dev/nvme-fabrics \
            || fail "nvme-rdma: cannot connect to the server's target"
        for i in $(seq 30); do [ -b /dev/nvme0n1 ] && break; sleep 1; done
        mkswap /dev/nvme0n1 >/dev/null && swapon /dev/nvme0n1 || fail "nvme swapon"
        measure nvmeof-rdma
        swapoff /dev/nvme0n1 || fail "swapoff nvme"
        echo 1 > /sys/class/nvme/nvme0/delete_controller ;;
    fastswap-dram)
        # Frontswap serves every swap area once registered: these run last.
        swap_on
        load_dram
        measure fastswap-dram
        swapoff /dev/vda || fail "swapoff"
        rmmod fastswap && rmmod fastswap_dram || fail "unloading the DRAM backend" ;;
    fastswap-rdma)
        swap_on
        load_rdma
        measure fastswap-rdma
        swapoff /dev/vda || fail "swapoff" ;;
    *) fail "unknown backend $b" ;;
    esac
done
say "all backends measured"
