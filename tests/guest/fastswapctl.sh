# fastswapctl against the real modules: its exit statuses and notes with
# nothing loaded, a backend alone and both modules; reclaim-offload checks
# the CPU and sets the sysctl; while a workload swaps, status --json and
# watch --json report the real counters, whose changes equal /proc/vmstat's
# pswpout and pswpin, and watch's rates add up to those changes.
. /tests/lib.sh
C=fastswapctl
# jget KEY JSON: KEY's value at the top level (it comes before "rates").
jget() { echo "$2" | tr ',{}' '\n\n\n' | sed -n "s/^\"$1\":\(.*\)$/\1/p" | head -1; }
run() { out=$("$@" 2>/tmp/err); rc=$?; err=$(cat /tmp/err); }

run $C --version
[ $rc -eq 0 ] && echo "$out" | grep -q '^fastswapctl [0-9]' || fail "--version: rc $rc, '$out'"

# Nothing loaded: status prints, says what to load, exits 3.
run $C status
echo "$out"; echo "$err"
[ $rc -eq 3 ] || fail "status with no module loaded exited $rc, not 3"
echo "$err" | grep -q "insmod fastswap_rdma.ko" || fail "no advice on what to load: '$err'"
echo "$out" | grep -q "^backend *none" || fail "the table does not say backend none"
run $C status --json
[ $rc -eq 3 ] && [ "$(jget backend "$out")" = '"none"' ] && [ "$(jget enabled "$out")" = false ] ||
    fail "status --json with nothing loaded: rc $rc, $out"
ok "nothing loaded: exit 3, backend none, and a note saying what to insmod"

# Reclaim offload: the CPU is checked before the sysctl is written.
run $C reclaim-offload
[ $rc -eq 0 ] && [ "$out" = off ] || fail "reclaim-offload prints '$out' (rc $rc), not off"
run $C reclaim-offload 5
[ $rc -eq 1 ] && echo "$err" | grep -q "0-1" || fail "CPU 5 of 2: rc $rc, '$err'"
[ "$(cat /proc/sys/vm/memcg_reclaim_offload_cpu)" = -1 ] || fail "a refused CPU changed the sysctl"
run $C reclaim-offload 1
[ $rc -eq 0 ] && [ "$(cat /proc/sys/vm/memcg_reclaim_offload_cpu)" = 1 ] || fail "reclaim-offload 1: rc $rc, '$err'"
run $C reclaim-offload
[ "$out" = 1 ] || fail "reclaim-offload prints '$out' after setting CPU 1"
run $C reclaim-offload off
[ $rc -eq 0 ] && [ "$(cat /proc/sys/vm/memcg_reclaim_offload_cpu)" = -1 ] || fail "reclaim-offload off: rc $rc"
ok "reclaim-offload: CPU 5 refused naming 0-1, CPU 1 set, off"

swap_on
insmod $MOD/fastswap_dram.ko size=512M || fail "insmod fastswap_dram.ko"
run $C status
[ $rc -eq 3 ] && echo "$err" | grep -q "fastswap.ko" || fail "backend without fastswap.ko: rc $rc, '$err'"
ok "backend alone: exit 3, the note names fastswap.ko"
insmod $MOD/fastswap.ko || fail "insmod fastswap.ko"
run $C status
echo "$out"
[ $rc -eq 0 ] && [ -z "$err" ] || fail "status with both modules: rc $rc, '$err'"
echo "$out" | grep -q "^capacity *512.0 MiB" || fail "the table does not show the 512 MiB capacity"

# The counters while a workload swaps: 160 MiB through a 64 MiB cgroup
# (debug kernel: 80 MiB through 32 MiB), watched every second.
cgroup memory.max $(by_kernel 64M 32M)
run $C status --json; before=$out
mark_swap
$C watch --json --interval 1 > /tmp/watch &
watcher=$!
expect "workload verifies" in_cgroup $W verify --size $(by_kernel 160M 80M)
sleep 2   # one more refresh after the workload
kill -INT $watcher; wait $watcher; wrc=$?
run $C status --json; after=$out
swap_since_mark
stores=$(( $(jget stores "$after") - $(jget stores "$before") ))
loads=$(( $(jget loads "$after") - $(jget loads "$before") ))
echo "fastswapctl: stores +$stores, loads +$loads; /proc/vmstat: pswpout +$out, pswpin +$in"
[ "$stores" -gt 0 ] && [ "$loads" -gt 0 ] || fail "fastswapctl shows no stores or loads"
[ "$stores" -eq "$out" ] || fail "fastswapctl's stores grew by $stores, pswpout by $out"
[ "$loads" -eq "$in" ] || fail "fastswapctl's loads grew by $loads, pswpin by $in"
[ "$(jget failed_stores "$after")" = 0 ] || fail "stores failed with a 512 MiB pool"
[ "$(jget pswpout "$after")" = "$(vmstat pswpout)" ] || fail "its vmstat pswpout differs from /proc/vmstat"
ok "status --json: stores and loads grew exactly as pswpout and pswpin"

# watch: SIGINT ends it cleanly; one line per second; the rates times the
# measured intervals add up to the change in stores between its first and
# last line.
[ $wrc -eq 0 ] || fail "watch exited $wrc on SIGINT"
lines=$(wc -l < /tmp/watch)
[ "$lines" -ge 3 ] || fail "watch printed $lines lines"
first=$(head -1 /tmp/watch); last=$(tail -1 /tmp/watch)
[ "$(jget rates "$first")" = null ] || fail "the first refresh has rates"
sum=$(tail -n +2 /tmp/watch | while read -r l; do
    echo "$l" | sed -n 's/.*"interval_secs":\([0-9.e-]*\),"rates":{"stores":\([0-9.e-]*\),.*/\1 \2/p'
done | awk '{ s += $1 * $2 } END { printf "%.0f", s }')
delta=$(( $(jget stores "$last") - $(jget stores "$first") ))
echo "watch: $lines lines, stores +$delta, sum of rate x interval $sum"
[ "$delta" -gt 0 ] || fail "watch saw no stores"
[ $(( sum - delta )) -le 1 ] && [ $(( delta - sum )) -le 1 ] || fail "rates add up to $sum stores, not $delta"
ok "watch: $lines refreshes, its rates add up to the $delta stores it saw"
