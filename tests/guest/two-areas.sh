# Two swap areas: pages are held in both; one is switched off and on again
# while the other still holds pages; every byte verifies and nothing stays
# held.
. /tests/lib.sh
modprobe zram || fail "modprobe zram"
echo $(by_kernel 48M 16M) > /sys/block/zram0/disksize || fail "zram disksize"
mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 || fail "swapon zram0"
swap_on   # /dev/vda, lower priority: used once zram0's 48 MiB are taken
load_dram
cgroup memory.max $(by_kernel 64M 24M)
paused_workload $(by_kernel 192M 64M)
cat /proc/swaps
used() { awk -v d="$1" '$1 == d { print $4 }' /proc/swaps; }
[ "$(used /dev/zram0)" -gt 0 ] && [ "$(used /dev/vda)" -gt 0 ] || fail "pages are not in both areas"
held=$(fs curr_pages)
ok "both areas in use, fastswap holds $held pages"
expect "swapoff zram0 while /dev/vda holds pages" swapoff /dev/zram0
expect "swapon zram0 again" swapon /dev/zram0
touch /tmp/go
expect "data intact after swapoff and swapon of one area" wait $pid
sleep 1
[ "$(fs curr_pages)" -eq 0 ] || fail "frontswap still holds $(fs curr_pages) pages"
[ "$(backend pages)" -eq 0 ] || fail "backend still holds $(backend pages) pages"
expect "a new workload verifies across both areas" in_cgroup $W verify --size $(by_kernel 160M 48M)
ok "nothing held after exit"
