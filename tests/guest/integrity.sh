# 256 MiB written and verified in a cgroup limited to 128 MiB: at least
# 128 MiB goes through fastswap and back, every byte checked.
. /tests/lib.sh
swap_on
load_dram
cgroup memory.max 128M
expect "256 MiB pattern survives swap, one process" in_cgroup $W verify --size 256M --passes 2
[ "$(fs succ_stores)" -ge 32768 ] || fail "only $(fs succ_stores) pages stored; expected >= 32768 (128 MiB)"
ok "$(fs succ_stores) pages stored, $(fs loads) loaded"
