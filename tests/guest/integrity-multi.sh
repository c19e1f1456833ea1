# Four processes on two vCPUs share a 128 MiB cgroup with 256 MiB of data.
# (Debug kernel: 64 MiB in 32 MiB.)
. /tests/lib.sh
swap_on
load_dram
limit=$(by_kernel 128 32) # MiB; the data is twice the limit
cgroup memory.max ${limit}M
expect "4 processes x $((limit / 2)) MiB survive swap" in_cgroup $W verify --size $((2 * limit))M --procs 4 --passes 2
[ "$(fs succ_stores)" -ge $((limit * 256)) ] || fail "only $(fs succ_stores) pages stored"
[ "$(fs async_loads)" -gt 0 ] || fail "no readahead page was loaded asynchronously"
ok "$(fs succ_stores) stored, $(fs loads) loaded ($(fs async_loads) async)"
