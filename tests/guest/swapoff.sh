# swapoff while the backend holds pages brings every page back intact;
# then both modules unload.
. /tests/lib.sh
swap_on
load_dram
cgroup memory.max $(by_kernel 64M 32M)
paused_workload $(by_kernel 160M 80M)
held=$(fs curr_pages)
[ "$held" -gt 0 ] || fail "no page is held by the backend"
ok "backend holds $held pages ($(backend pages) in the pool)"
refuse "rmmod fastswap while it holds pages" rmmod fastswap
refuse "rmmod fastswap_dram while fastswap uses it" rmmod fastswap_dram
echo max > $CG/memory.max
expect "swapoff brings every page back" swapoff /dev/vda
[ "$(fs curr_pages)" -eq 0 ] || fail "frontswap still holds $(fs curr_pages) pages after swapoff"
[ "$(backend pages)" -eq 0 ] || fail "backend still holds $(backend pages) pages"
touch /tmp/go
expect "data intact after swapoff" wait $pid
unload_modules dram
dmesg_has "DRAM backend unloaded" || fail "no unload message"
