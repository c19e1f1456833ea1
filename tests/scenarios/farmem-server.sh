# The far memory node of the RDMA testbed: runs farmem-server until the
# harness stops the guest. With bench_exports on the command line it also
# serves the block-device baselines of scripts/bench: a RAM disk as an NVMe
# over Fabrics target (RDMA transport) and another over NBD (TCP).
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
}
grep -q bench_exports /proc/cmdline && bench_exports

size=$(sed -n 's/.*farmem_size=\([^ ]*\).*/\1/p' /proc/cmdline)
# A test's "# server-args:" line arrives as farmem_args=OPT,VALUE,...
args=$(sed -n 's/.*farmem_args=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
case " $args " in
*" --size "*) ;;
*) args="--size ${size:-512M} $args" ;;
esac
echo "farmem-server $PORT $args"
# shellcheck disable=SC2086
farmem-server $PORT $args 2>&1 &
wait
