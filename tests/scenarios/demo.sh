# The whole flow a user runs, narrated: swap device, modules, a workload
# bigger than its cgroup, and what went where.
. /tests/demo-lib.sh

say "swap device: 512 MiB virtio disk /dev/vda (it only enables the swap path)"
swap_on
# A pool big enough for the whole workload (the default, 20% of RAM, would
# send part of it to the swap device).
say "insmod fastswap_dram.ko size=512M; insmod fastswap.ko"
load_dram size=512M
show_dmesg "fastswap[:_]|frontswap:"
cgroup memory.max 128M
mark_swap
say "workload: write 256 MiB in a cgroup limited to 128 MiB, read it back, check every byte"
workload_with_status 15 --size 256M --passes 2
swap_since_mark
say "pages stored by fastswap:    $(fs succ_stores)   (kernel pswpout: $out)"
say "pages loaded by fastswap:    $(fs loads)   (kernel pswpin: $in; $(fs async_loads) were readahead, loaded asynchronously)"
say "stores refused (to disk):    $(fs failed_stores)"
say "swap device sectors written: $disk"
say "after exit, pages held:      $(fs curr_pages) (backend: $(backend pages) pages, $(backend bytes) bytes)"
