# guest-mem: 512
# zswap in front of fastswap: pages flip between compressible (zswap keeps
# them) and incompressible (zswap rejects them, fastswap stores them) from
# pass to pass, and each is read back before it is rewritten, so a swap slot
# moves between the two; zswap's tiny pool keeps writing entries back to the
# swap device. Not one page may come back holding an older pass's data.
. /tests/lib.sh
swap_on
load_dram
echo lz4 > /sys/module/zswap/parameters/compressor || fail "zswap compressor lz4"
echo 1 > /sys/module/zswap/parameters/max_pool_percent || fail "zswap max_pool_percent"
echo Y > /sys/module/zswap/parameters/enabled || fail "enable zswap"
# The pool (1% of 512 MiB) is smaller than the compressible half of the
# data, so zswap must write back. (Debug kernel: less data, fewer passes.)
cgroup memory.max $(by_kernel 48M 24M)
expect "every page reads back its previous pass with zswap in front" \
    in_cgroup $W rewrite --size $(by_kernel 128M 64M) --passes $(by_kernel 6 3)
zs() { cat /sys/kernel/debug/zswap/$1; }
for f in /sys/module/zswap/parameters/* /sys/kernel/debug/zswap/*; do echo "$f: $(cat $f)"; done
echo "zswap: stored_pages=$(zs stored_pages) written_back_pages=$(zs written_back_pages) reject_compress_poor=$(zs reject_compress_poor); fastswap: stores=$(fs succ_stores) loads=$(fs loads)"
[ "$(zs written_back_pages)" -gt 0 ] || fail "zswap wrote nothing back to the swap device (the test needs it)"
[ "$(fs succ_stores)" -gt 0 ] || fail "fastswap stored nothing behind zswap"
ok "zswap and fastswap both took pages, zswap wrote back $(zs written_back_pages)"
