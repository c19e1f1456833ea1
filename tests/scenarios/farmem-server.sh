# The far memory node of the RDMA testbed: runs farmem-server until the
# harness stops the guest.
. /tests/lib.sh
rdma_up $SERVER_IP
size=$(sed -n 's/.*farmem_size=\([^ ]*\).*/\1/p' /proc/cmdline)
farmem-server $PORT --size "${size:-512M}" 2>&1 &
wait
