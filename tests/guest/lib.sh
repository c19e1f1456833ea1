# Helpers for guest test scenarios (sourced by each /tests/NAME.sh).
set -u
MOD=/modules
W=/usr/bin/fastswap-workload
CG=/sys/fs/cgroup/work

# The harness hands a guest its settings on the kernel command line
# (scripts/guest.sh, run_guest; a test's "# guest-append:" line).
# cmdline_arg NAME: the value of NAME=VALUE there (the last if several),
# empty if there is none.
cmdline_arg() { printf " %s\n" "$(cat /proc/cmdline)" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
# cmdline_has WORD: WORD (such as fsdebug=1) is a whole word there.
cmdline_has() { case " $(cat /proc/cmdline) " in *" $1 "*) return 0 ;; esac; return 1; }

# The debug kernel (scripts/test --debug-kernel: KASAN, lockdep, ...) runs
# about 20 times slower under emulation; its guests have fsdebug=1.
DEBUG_KERNEL=0
cmdline_has fsdebug=1 && DEBUG_KERNEL=1
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
# await TIMES PAUSE COMMAND...: runs COMMAND until it succeeds: at once and
# again after each of up to TIMES pauses of PAUSE seconds. Its status is
# COMMAND's last.
await() {
    # shellcheck disable=SC3043 # busybox sh has local
    local n="$1" pause="$2"
    shift 2
    while ! "$@"; do
        [ "$n" -gt 0 ] || return 1
        sleep "$pause"
        n=$((n - 1))
    done
}

fs() { cat /sys/kernel/debug/frontswap/$1; }
backend() { awk -v k="$1" '$1 == k { print $2 }' /sys/kernel/debug/fastswap/backend; }
vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
# Sectors written to the swap disk since boot.
disk_writes() { awk '{ print $7 }' /sys/block/vda/stat; }
dmesg_has() { dmesg | grep -q "$1"; }

# mark_swap: notes the kernel's swap counters and the swap disk's writes;
# swap_since_mark then sets out, in and disk to what they grew by since:
# pages swapped out (pswpout) and in (pswpin), sectors written to the disk.
mark_swap() { out0=$(vmstat pswpout); in0=$(vmstat pswpin); disk0=$(disk_writes); }
swap_since_mark() {
    out=$(( $(vmstat pswpout) - out0 )); in=$(( $(vmstat pswpin) - in0 )); disk=$(( $(disk_writes) - disk0 ))
}
# counters_report: the changes since mark_swap beside fastswap's counters.
counters_report() {
    echo "pswpout=$out pswpin=$in frontswap stores=$(fs succ_stores) loads=$(fs loads) async=$(fs async_loads) failed=$(fs failed_stores) backend stores=$(backend stores) loads=$(backend loads) disk sectors written=$disk"
}
# counters_agree [loads]: after swap_since_mark, fastswap's counters agree
# with the kernel's: it stored every page swapped out and loaded every page
# swapped in, the backend stored as many (with "loads": and loaded as many),
# and the swap disk took no write.
counters_agree() {
    [ "$out" -eq "$(fs succ_stores)" ] || fail "pswpout $out != frontswap stores $(fs succ_stores)"
    [ "$in" -eq "$(fs loads)" ] || fail "pswpin $in != frontswap loads $(fs loads)"
    [ "$(backend stores)" -eq "$(fs succ_stores)" ] || fail "backend stores $(backend stores) != frontswap stores"
    if [ "${1:-}" = loads ]; then
        [ "$(backend loads)" -eq "$(fs loads)" ] || fail "backend loads $(backend loads) != frontswap loads"
    fi
    [ "$disk" -eq 0 ] || fail "swap device received $disk sectors of writes"
}

swap_on() { mkswap /dev/vda >/dev/null && swapon /dev/vda || fail "swapon"; }
load_dram() {
    insmod $MOD/fastswap_dram.ko "$@" || fail "insmod fastswap_dram.ko $*"
    insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
}
# unload_modules BACKEND: fastswap.ko, then fastswap_BACKEND.ko, must unload.
unload_modules() {
    expect "rmmod fastswap" rmmod fastswap
    expect "rmmod fastswap_$1" rmmod "fastswap_$1"
}

# cgroup LIMIT_FILE VALUE: a fresh memory cgroup for the workload.
cgroup() {
    echo +memory > /sys/fs/cgroup/cgroup.subtree_control
    mkdir -p $CG
    echo "$2" > $CG/$1
}
# in_cgroup COMMAND...: run COMMAND inside the work cgroup.
in_cgroup() { sh -c 'echo $$ > '$CG'/cgroup.procs && exec "$@"' sh "$@"; }

# The two-guest RDMA testbed: its addresses, defined in scripts/lib.sh and
# passed on the kernel command line (TESTBED_APPEND there).
SERVER_IP=$(cmdline_arg fs_server_ip)     # the far memory server guest
CLIENT_IP=$(cmdline_arg fs_client_ip)     # the client guest
OTHER_IP=$(cmdline_arg fs_other_ip)       # a second address for the client guest
NOWHERE_IP=$(cmdline_arg fs_nowhere_ip)   # an address no guest has
PORT=$(cmdline_arg fs_port)               # farmem-server's port
NOWHERE_MAC=$(cmdline_arg fs_nowhere_mac) # a MAC no guest has
CTL_PORT=$(cmdline_arg fs_ctl_port)       # the server guest's control port (tests/scenarios/server-ctl.sh)

# rdma_up ADDR: bring up eth0 with ADDR and Soft-RoCE (rxe0) on top of it.
rdma_up() {
    [ -n "${1:-}" ] || fail "no testbed address on the kernel command line (fs_server_ip=... from scripts/lib.sh)"
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
        ping -c 1 -W 1 "$SERVER_IP" >/dev/null 2>&1 && return 0
    done
    fail "server guest $SERVER_IP does not answer ping ($(grep eth0 /proc/net/dev))"
}

load_rdma() {
    server_reachable
    insmod $MOD/fastswap_rdma.ko sport="$PORT" sip="$SERVER_IP" cip="$CLIENT_IP" nq=2 "$@" || fail "insmod fastswap_rdma.ko"
    dmesg_has "ctrl is ready for reqs" || fail "no 'ctrl is ready for reqs' in dmesg"
    insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
}
# rdma_client: this guest as the testbed's client: eth0 and Soft-RoCE with
# CLIENT_IP, and the swap disk on.
rdma_client() { rdma_up "$CLIENT_IP"; swap_on; }

# cut_path / restore_path: this guest's frames stop reaching the server
# guest (its ARP entry for the server names NOWHERE_MAC; Soft-RoCE sends
# through the IP stack, which takes the MAC from the ARP table for every
# frame), or reach it again.
cut_path() { arp -i eth0 -s "$SERVER_IP" "$NOWHERE_MAC" || fail "poisoning the ARP entry"; }
restore_path() { arp -i eth0 -d "$SERVER_IP" || fail "restoring the ARP entry"; }

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

# paused_in_far_memory [ARG...]: fastswap_rdma.ko loaded with ARGs
# (load_rdma), and a paused workload (paused_workload: its pid is in $pid)
# of 48 MiB in a 24 MiB cgroup (debug kernel: 32 MiB in 16 MiB) with pages
# held in far memory.
paused_in_far_memory() {
    load_rdma "$@"
    cgroup memory.max "$(by_kernel 24M 16M)"
    paused_workload "$(by_kernel 48M 32M)"
    [ "$(backend pages)" -gt 0 ] || fail "no page is held in far memory"
}

# server_ctl COMMAND [TIMEOUT_S]: runs COMMAND (see tests/scenarios/server-ctl.sh)
# in the server guest through its control port and prints its answer; fails
# if none came within TIMEOUT_S (default 60).
server_ctl() {
    local out
    out=$(echo "$1" | timeout "${2:-60}" nc "$SERVER_IP" "$CTL_PORT") && [ -n "$out" ] || return 1
    echo "$out"
}
