# fork with copy-on-write over swapped pages: the child reads the parent's
# swapped data and rewrites half of it; the parent still reads its own.
. /tests/lib.sh
swap_on
load_dram
cgroup memory.max $(by_kernel 48M 24M)
expect "parent and child each read their own data" in_cgroup $W forkcheck --size $(by_kernel 112M 48M)
[ "$(fs succ_stores)" -gt 0 ] && [ "$(fs loads)" -gt 0 ] || fail "pages did not go through fastswap"
ok "$(fs succ_stores) stores, $(fs loads) loads"
