# Helpers for guest test scenarios (sourced by each /tests/NAME.sh).
set -u
MOD=/modules
W=/usr/bin/fastswap-workload
CG=/sys/fs/cgroup/work

# The debug kernel (scripts/test --debug-kernel: KASAN, lockdep, ...) runs
# about 20 times slower under emulation; its guests have fsdebug=1.
DEBUG_KERNEL=0
case " $(cat /proc/cmdline) " in *" fsdebug=1 "*) DEBUG_KERNEL=1 ;; esac
# by_kernel NORMAL DEBUG: prints NORMAL on the normal kernel and DEBUG on the
# debug kernel. For data sizes: the debug lane runs every scenario and every
# assertion, on less data.
by_kernel() { if [ "$DEBUG_KERNEL" = 1 ]; then echo "$2"; else echo "$1"; fi; }

fail() { echo "FAIL: $*"; dmesg | tail -20; exit 1; }
ok() { echo "ok: $*"; }
# expect DESCRIPTION COMMAND...: the command must succeed.
expect() { d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
# refuse DESCRIPTION COMMAND...: the command must fail.
refuse() { d=$1; shift; if "$@" 2>/dev/null; then fail "$d (it succeeded)"; else ok "$d"; fi; }

fs() { cat /sys/kernel/debug/frontswap/$1; }
backend() { awk -v k="$1" '$1 == k { print $2 }' /sys/kernel/debug/fastswap/backend; }
vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
# Sectors written to the swap disk since boot.
disk_writes() { awk '{ print $7 }' /sys/block/vda/stat; }
dmesg_has() { dmesg | grep -q "$1"; }

swap_on() { mkswap /dev/vda >/dev/null && swapon /dev/vda || fail "swapon"; }
load_dram() {
    insmod $MOD/fastswap_dram.ko "$@" || fail "insmod fastswap_dram.ko $*"
    insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
}

# cgroup LIMIT_FILE VALUE: a fresh memory cgroup for the workload.
cgroup() {
    echo +memory > /sys/fs/cgroup/cgroup.subtree_control
    mkdir -p $CG
    echo "$2" > $CG/$1
}
# in_cgroup COMMAND...: run COMMAND inside the work cgroup.
in_cgroup() { sh -c 'echo $$ > '$CG'/cgroup.procs && exec "$@"' sh "$@"; }

# The two-guest RDMA testbed: TEST-NET-1 addresses on a QEMU socket network
# that only exists between the two guests.
SERVER_IP=192.0.2.1
CLIENT_IP=192.0.2.2
PORT=50000
# The server guest's control port (tests/scenarios/server-ctl.sh).
CTL_PORT=7777

# rdma_up ADDR: bring up eth0 with ADDR and Soft-RoCE (rxe0) on top of it.
rdma_up() {
    # A jumbo MTU lets rxe carry a whole page in one packet (RDMA MTU 4096).
    ip link set eth0 mtu 9000 && ip link set eth0 up && ip addr add "$1/24" dev eth0 || fail "network setup"
    # crc32_generic is requested by name from rxe; load it up front.
    for m in crc32_generic ib_core ib_uverbs iw_cm ib_cm rdma_cm rdma_ucm rdma_rxe; do
        modprobe $m || fail "modprobe $m"
    done
    rdma link add rxe0 type rxe netdev eth0 || fail "rdma link add rxe0"
}

# The server guest must answer plain IP first (this also warms ARP).
server_reachable() {
    for i in $(seq 30); do
        ping -c 1 -W 1 $SERVER_IP >/dev/null 2>&1 && return 0
    done
    fail "server guest $SERVER_IP does not answer ping ($(grep eth0 /proc/net/dev))"
}

load_rdma() {
    server_reachable
    insmod $MOD/fastswap_rdma.ko sport=$PORT sip=$SERVER_IP cip=$CLIENT_IP nq=2 "$@" || fail "insmod fastswap_rdma.ko"
    dmesg_has "ctrl is ready for reqs" || fail "no 'ctrl is ready for reqs' in dmesg"
    insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
}

# Seconds since boot, for bounding how long an error takes.
uptime_s() { cut -d. -f1 /proc/uptime; }

# progress SECONDS: print the backend's counters every SECONDS (background).
progress() {
    while sleep "$1"; do
        echo "progress: $(tr '\n' ' ' < /sys/kernel/debug/fastswap/backend)"
    done &
}

# paused_workload SIZE: start a verifying workload in the work cgroup that
# fills SIZE and then waits for /tmp/go before checking; returns once its
# data is written (and so partly swapped out). Its pid is in $pid.
paused_workload() {
    in_cgroup $W verify --size "$1" --pause-file /tmp/go &
    pid=$!
    while ! ls /tmp/go.ready.* >/dev/null 2>&1; do
        kill -0 $pid 2>/dev/null || fail "workload exited before pausing"
        sleep 1
    done
}

# server_ctl COMMAND [TIMEOUT_S]: runs COMMAND (see tests/scenarios/server-ctl.sh)
# in the server guest through its control port and prints its answer; fails
# if none came within TIMEOUT_S (default 60).
server_ctl() {
    local out
    out=$(echo "$1" | timeout "${2:-60}" nc $SERVER_IP $CTL_PORT) && [ -n "$out" ] || return 1
    echo "$out"
}
