# The benchmark, run in the client guest of the two-guest testbed (the
# server guest exports a RAM disk over NVMe-oF/RDMA and NBD, and runs
# perftest's servers, beside farmem-server). For each swap backend:
# swap-out rate, swap-in fault latency (random and sequential, 1 and 2
# threads), and the slowdown of three applications at several local-memory
# ratios; for raw-rdma, perftest's one-sided verbs on the same link. Prints
# one "BENCH {json}" line per run and "bench: ..." progress lines;
# scripts/bench collects them.
. /tests/lib.sh
arg() { cmdline_arg "bench_$1"; }
LAT_SIZE=$(arg size) ROUNDS=$(arg rounds) APP_SIZE=$(arg app_size)
RATIOS=$(arg ratios | tr , ' ') BACKENDS=$(arg backends | tr , ' ')
APP_ROUNDS=$(arg app_rounds) OFFLOAD_ROUNDS=$(arg offload_rounds)
PERFTEST=$(arg perftest) # LAT_ITERS,BW_ITERS (the server guest has the same)
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

# raw-rdma: the link's own limit, perftest's one-sided verbs between the
# same two guests: ib_read_lat and ib_write_lat give the median latency
# (t_typical, perftest's median; ib_read_lat times each read, ib_write_lat
# reports half the round trip of a write ping-pong) and its 99th and 99.9th
# percentiles; ib_read_bw and ib_write_bw give pages per second (MsgRate,
# in Mpps, x 1e6: 4 KiB messages). Each tool runs against its server on the
# server guest (tests/scenarios/farmem-server.sh starts them on ports
# 18515-18518 with the same options), over rdma_cm on rxe0. ib_read_lat
# waits for each completion with -e (it sleeps on the completion channel):
# under emulation a process spinning on the CQ keeps the emulated CPUs
# from moving the very packets it waits for (polled: p50 7 to 9 ms; with
# -e: 1.2 ms, the minimum of either about 0.7 ms). perftest has no -e for
# writes, and polls in the bandwidth tools (with -e ib_read_bw moved less:
# 109 pages/s against 252). A run that fails (an error, no result line, no
# number) is reported as a BENCH line with "error" instead of figures, and
# the bench goes on.
perftest_run() { # perftest_run TOOL PORT ITERS ROUND [OPTION...]
    local t=$1 port=$2 n=$3 round=$4 t0 t1 rc secs line err="" json
    shift 4
    for _ in 1 2 3; do
        t0=$(cut -d' ' -f1 /proc/uptime)
        timeout 300 $t -R -d rxe0 -s 4096 -n "$n" -p "$port" "$@" $SERVER_IP >/tmp/perftest.out 2>&1
        rc=$?
        t1=$(cut -d' ' -f1 /proc/uptime)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        sed 's/^/perftest: /' /tmp/perftest.out
        # Its result line: the message size first, then the iterations.
        line=$(awk '$1 == 4096 && $2 ~ /^[0-9]+$/' /tmp/perftest.out | tail -1)
        case $t in
        *_lat) # bytes iterations t_min t_max t_typical t_avg t_stdev p99 p99.9
            json=$(echo "$line" | awk -v v="${t#ib_}" '
                NF >= 9 && $5 > 0 && $8 > 0 && $9 > 0 && $5 !~ /inf|nan/ {
                    sub(/_lat$/, "", v)
                    printf "\"%s_p50_us\":%s,\"%s_p99_us\":%s,\"%s_p999_us\":%s", v, $5, v, $8, v, $9 }') ;;
        *_bw) # bytes iterations BW_peak BW_average MsgRate[Mpps]
            json=$(echo "$line" | awk -v v="${t#ib_}" '
                NF >= 5 && $5 > 0 && $5 !~ /inf|nan/ {
                    sub(/_bw$/, "", v)
                    printf "\"%s_pages_per_s\":%.0f", v, $5 * 1e6 }') ;;
        esac
        if [ $rc = 0 ] && [ -n "$json" ]; then
            emit "{\"raw\":\"$t\",\"backend\":\"raw-rdma\",\"round\":\"$round\",\"size\":4096,\"iterations\":$n,\"seconds\":$secs,$json}"
            say "raw-rdma: $t, $n x 4 KiB: $(echo "$json" | tr -d '"' | sed 's/:/ /g; s/,/, /g') (${secs}s)"
            return 0
        fi
        if [ $rc = 124 ] || [ $rc = 143 ]; then
            err="timed out after 300 s"
        elif [ $rc != 0 ]; then
            err="exit $rc: $(grep -v '^ *$' /tmp/perftest.out | tail -2)"
        else
            err="no result in its output: $(grep -v '^ *$' /tmp/perftest.out | tail -2)"
        fi
        # A server between two runs (restarting) refuses the connection
        # at once: try again, but not after a run that took its time.
        awk -v s="$secs" 'BEGIN { exit !(s < 15) }' || break
        sleep 3
    done
    err=$(echo "$err" | tr -d '"\\' | tr '[:cntrl:]' ' ' | tr -s ' ' | sed 's/^ //; s/ $//')
    emit "{\"raw\":\"$t\",\"backend\":\"raw-rdma\",\"round\":\"$round\",\"size\":4096,\"iterations\":$n,\"error\":\"$t: $err\"}"
    say "WARNING: raw-rdma: $t failed: $err"
}
raw_rdma() {
    local lat_n=${PERFTEST%,*} bw_n=${PERFTEST#*,} i
    [ -n "$PERFTEST" ] || fail "raw-rdma: no bench_perftest= on the command line"
    say "raw-rdma: perftest one-sided verbs, 4 KiB, $lat_n latency and $bw_n bandwidth iterations"
    for i in $(seq "$ROUNDS"); do
        perftest_run ib_read_lat 18515 "$lat_n" "$i" -e
        perftest_run ib_write_lat 18516 "$lat_n" "$i"
        perftest_run ib_read_bw 18517 "$bw_n" "$i"
        perftest_run ib_write_bw 18518 "$bw_n" "$i"
    done
    say "raw-rdma: done"
}

rdma_up $CLIENT_IP
server_reachable
for b in $BACKENDS; do
    case $b in
    raw-rdma) raw_rdma ;;
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
