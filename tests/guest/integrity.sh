# 256 MiB written and verified in a cgroup limited to 128 MiB: at least
# 128 MiB goes through fastswap and back, every byte checked. (Debug kernel:
# 64 MiB in 32 MiB.)
. /tests/lib.sh
swap_on
load_dram
limit=$(by_kernel 128 32) # MiB; the data is twice the limit
cgroup memory.max ${limit}M
expect "$((2 * limit)) MiB pattern survives swap, one process" in_cgroup $W verify --size $((2 * limit))M --passes 2
[ "$(fs succ_stores)" -ge $((limit * 256)) ] || fail "only $(fs succ_stores) pages stored; expected >= $((limit * 256)) ($limit MiB)"
ok "$(fs succ_stores) pages stored, $(fs loads) loaded"
