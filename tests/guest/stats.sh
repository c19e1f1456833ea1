# /sys/kernel/mm/fastswap, the stable statistics interface: every file is
# there with one value before any module loads, follows the backend's and
# fastswap.ko's loading and unloading, and its counts add up against
# /proc/vmstat and debugfs, failed stores (a pool too small) included.
. /tests/lib.sh
S=/sys/kernel/mm/fastswap
FILES="enabled backend state server queues capacity_bytes stored_pages used_bytes
stores failed_stores loads async_loads failed_loads invalidates"
sysfs() { cat $S/$1; }

[ -d $S ] || fail "$S is missing"
for f in $FILES; do
    [ -f $S/$f ] || fail "$S/$f is missing"
    [ "$(wc -l < $S/$f)" -eq 1 ] || fail "$S/$f holds $(wc -l < $S/$f) lines, not one"
    refuse "$f is read-only" sh -c "echo 1 > $S/$f"
done
ok "all $(echo $FILES | wc -w) files present, one line each, read-only"

# Nothing loaded.
check() { [ "$(sysfs $1)" = "$2" ] || fail "$1 is '$(sysfs $1)', not '$2' ($3)"; }
for kv in enabled=0 backend=none state=none server= queues=0 capacity_bytes=0 stored_pages=0; do
    check "${kv%%=*}" "${kv#*=}" "no module loaded"
done
ok "no module: backend none, state none, enabled 0"

swap_on
insmod $MOD/fastswap_dram.ko size=8M || fail "insmod fastswap_dram.ko"
check backend dram "backend loaded"; check state active "backend loaded"
check enabled 0 "fastswap.ko not loaded yet"; check server "" "dram has no server"
check queues 0 "dram has no queues"
check capacity_bytes $((8 << 20)) "size=8M"
insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
check enabled 1 "fastswap.ko loaded"
ok "dram backend: active, 8 MiB capacity, enabled after fastswap.ko"

# 160 MiB through a 64 MiB cgroup into an 8 MiB pool: most stores fail and
# go to the swap device (debug kernel: 80 MiB through 32 MiB).
cgroup memory.max $(by_kernel 64M 32M)
snap() { for f in stores failed_stores loads async_loads failed_loads invalidates; do echo "$f=$(sysfs $f)"; done; echo "pswpout=$(vmstat pswpout) pswpin=$(vmstat pswpin)"; }
eval "$(snap | sed 's/^/b_/; s/ / b_/')"
paused_workload $(by_kernel 160M 80M)
# Paused with its data written: the pool is full, the rest is on the device.
[ "$(sysfs stored_pages)" -eq "$(fs curr_pages)" ] || fail "stored_pages != debugfs curr_pages"
[ "$(sysfs stored_pages)" -eq "$(backend pages)" ] || fail "stored_pages != backend pages"
[ "$(sysfs used_bytes)" -eq "$(backend bytes)" ] || fail "used_bytes != backend bytes"
[ "$(sysfs stored_pages)" -gt 0 ] && [ "$(sysfs stored_pages)" -le 2048 ] ||
    fail "stored_pages $(sysfs stored_pages) not in 1..2048 (an 8 MiB pool)"
[ "$(sysfs used_bytes)" -ge $(( $(sysfs stored_pages) * 4096 )) ] || fail "used_bytes below stored_pages x 4 KiB"
ok "while paused: the pool holds $(sysfs stored_pages) pages in $(sysfs used_bytes) bytes, as debugfs says"
touch /tmp/go
wait $pid || fail "workload failed verification"
ok "workload verifies"
eval "$(snap | sed 's/^/a_/; s/ / a_/')"
d() { echo $(( $(eval echo \$a_$1) - $(eval echo \$b_$1) )); }
echo "delta: stores=$(d stores) failed_stores=$(d failed_stores) loads=$(d loads) async_loads=$(d async_loads) failed_loads=$(d failed_loads) invalidates=$(d invalidates) pswpout=$(d pswpout) pswpin=$(d pswpin)"
[ "$(d stores)" -gt 0 ] && [ "$(d loads)" -gt 0 ] || fail "no stores or loads counted"
[ "$(d failed_stores)" -gt 0 ] || fail "an 8 MiB pool refused no store"
[ "$(d failed_loads)" -eq 0 ] || fail "$(d failed_loads) loads failed"
# Every page swapped out is either stored or refused and written to the
# device: both count in pswpout, page for page.
[ "$(d pswpout)" -eq $(( $(d stores) + $(d failed_stores) )) ] ||
    fail "pswpout delta $(d pswpout) != stores $(d stores) + failed_stores $(d failed_stores)"
# Reads from fastswap count in pswpin; the rest came from the device.
[ "$(d loads)" -le "$(d pswpin)" ] || fail "loads $(d loads) > pswpin delta $(d pswpin)"
[ "$(d async_loads)" -le "$(d loads)" ] || fail "async_loads > loads"
# The workload's exit freed its swap: every copy was dropped.
check stored_pages 0 "the workload exited"
[ "$(sysfs stores)" -eq "$(fs succ_stores)" ] && [ "$(sysfs loads)" -eq "$(fs loads)" ] &&
    [ "$(sysfs invalidates)" -eq "$(fs invalidates)" ] || fail "sysfs counts differ from debugfs"
ok "counts add up: pswpout = stores + failed_stores, loads <= pswpin, all dropped at exit"

# Unloading: counts since boot stay, the backend goes.
stores=$(sysfs stores)
swapoff /dev/vda || fail "swapoff"
check stored_pages 0 "after swapoff"
rmmod fastswap || fail "rmmod fastswap"
check enabled 0 "fastswap.ko unloaded"
rmmod fastswap_dram || fail "rmmod fastswap_dram"
check backend none "backend unloaded"; check state none "backend unloaded"
check capacity_bytes 0 "backend unloaded"
check stores "$stores" "counts survive unloading"
ok "unloaded: backend none, enabled 0, counts kept"
