# Helpers for guest test scenarios (sourced by each /tests/NAME.sh).
set -u
MOD=/modules
W=/usr/bin/fastswap-workload
CG=/sys/fs/cgroup/work

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
