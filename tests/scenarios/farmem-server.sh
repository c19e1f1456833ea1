# The far memory node of the RDMA testbed: runs farmem-server until the
# harness stops the guest. With bench_exports on the command line it also
# serves the baselines of scripts/bench: a RAM disk as an NVMe over Fabrics
# target (RDMA transport), another over NBD (TCP), and perftest's servers
# for raw one-sided verbs (raw-rdma).
. /tests/lib.sh
rdma_up $SERVER_IP

bench_exports() {
    local nq=nqn.2026-11.org.fastswap:swap cfs=/sys/kernel/config/nvmet
    modprobe brd rd_nr=2 rd_size=262144 || fail "modprobe brd"
    mount -t configfs none /sys/kernel/config 2>/dev/null
    modprobe nvmet-rdma || fail "modprobe nvmet-rdma"
    mkdir $cfs/subsystems/$nq $cfs/subsystems/$nq/namespaces/1 $cfs/ports/1 || fail "nvmet configfs"
    echo 1 > $cfs/subsystems/$nq/attr_allow_any_host
    echo /dev/ram0 > $cfs/subsystems/$nq/namespaces/1/device_path
    echo 1 > $cfs/subsystems/$nq/namespaces/1/enable || fail "nvmet namespace"
    echo rdma > $cfs/ports/1/addr_trtype
    echo ipv4 > $cfs/ports/1/addr_adrfam
    echo $SERVER_IP > $cfs/ports/1/addr_traddr
    echo 4420 > $cfs/ports/1/addr_trsvcid
    ln -s $cfs/subsystems/$nq $cfs/ports/1/subsystems/$nq || fail "nvmet port"
    printf '[generic]\n[swap]\nexportname = /dev/ram1\n' > /tmp/nbd.conf
    nbd-server -C /tmp/nbd.conf || fail "nbd-server"
    echo "bench exports: nvmet-rdma $nq (/dev/ram0) on $SERVER_IP:4420, nbd 'swap' (/dev/ram1) on port 10809"
    perftest_servers
}

# raw-rdma: one perftest server per tool, over rdma_cm on rxe0, 4 KiB
# messages, on ports 18515-18518 in this order, ib_read_lat with -e. The
# client side (tests/scenarios/bench.sh, perftest_run) runs each tool with
# the same options: the iterations come from bench_perftest=LAT_ITERS,BW_ITERS
# on both command lines. A perftest server serves one run and exits, so each
# runs in a loop; a failed run is shown on the console (the first one, then
# every tenth), and the loop waits longer after one so that a broken tool
# does not spin.
perftest_servers() {
    local spec lat_n bw_n t n opt port=18515
    spec=$(cmdline_arg bench_perftest)
    [ -n "$spec" ] || return 0
    lat_n=${spec%,*} bw_n=${spec#*,}
    for t in ib_read_lat ib_write_lat ib_read_bw ib_write_bw; do
        n=$lat_n opt=
        case $t in *_bw) n=$bw_n ;; esac
        [ $t = ib_read_lat ] && opt=-e
        (
            fails=0
            while :; do
                if $t -R -d rxe0 -s 4096 -n "$n" -p $port $opt >/tmp/$t.log 2>&1; then
                    sleep 0.5
                else
                    [ $((fails % 10)) = 0 ] && echo "perftest server $t failed (run $((fails + 1))): $(tail -2 /tmp/$t.log | tr '\n' ' ')"
                    fails=$((fails + 1))
                    sleep 5
                fi
            done
        ) &
        port=$((port + 1))
    done
    echo "bench exports: perftest servers (ib_read_lat, ib_write_lat, ib_read_bw, ib_write_bw) on ports 18515-18518, $lat_n/$bw_n iterations of 4096 bytes, ib_read_lat with -e"
}
cmdline_has bench_exports && bench_exports

# The control port client guest tests use to act on this guest (delete and
# add its RDMA device, read its kernel's reports): tests/scenarios/server-ctl.sh.
nc -ll -p "$CTL_PORT" -e /tests/server-ctl.sh &

size=$(cmdline_arg farmem_size)
# A test's "# server-args:" line arrives as farmem_args=OPT,VALUE,...
args=$(cmdline_arg farmem_args | tr , ' ')
case " $args " in
*" --size "*) ;;
*) args="--size ${size:-512M} $args" ;;
esac
echo "farmem-server $PORT $args"
# shellcheck disable=SC2086
farmem-server $PORT $args 2>&1 &
wait $! # (not the perftest servers, which never end)
