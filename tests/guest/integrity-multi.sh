# Four processes on two vCPUs share a 128 MiB cgroup with 256 MiB of data.
. /tests/lib.sh
swap_on
load_dram
cgroup memory.max 128M
expect "4 processes x 64 MiB survive swap" in_cgroup $W verify --size 256M --procs 4 --passes 2
[ "$(fs succ_stores)" -ge 32768 ] || fail "only $(fs succ_stores) pages stored"
[ "$(fs async_loads)" -gt 0 ] || fail "no readahead page was loaded asynchronously"
ok "$(fs succ_stores) stored, $(fs loads) loaded ($(fs async_loads) async)"
