#!/usr/bin/env bash
# fastswapctl on this host's own kernel, which lacks the Fastswap series:
# status, watch and reclaim-offload exit 4 and say to boot a patched kernel
# (the guests' tests cover a patched kernel; cargo test covers fake trees).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/target/x86_64-unknown-linux-gnu/release/fastswapctl
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
[ -x "$BIN" ] || { bad "$BIN is not built (scripts/build builds it)"; exit 1; }
if [ -e /sys/kernel/mm/fastswap ]; then
    bad "this host runs a Fastswap kernel: the test needs one without the series"
    exit 1
fi
for args in "status" "status --json" "watch --count 1" "reclaim-offload" "reclaim-offload 0"; do
    out=$("$BIN" $args 2>&1 >/dev/null); rc=$?
    if ((rc == 4)) && grep -q "boot a kernel built with the kernel-patch/ series" <<<"$out"; then
        ok "fastswapctl $args: exit 4, '$out'"
    else
        bad "fastswapctl $args: exit $rc, '$out'"
    fi
done
[ -z "$(cat /proc/sys/vm/memcg_reclaim_offload_cpu 2>/dev/null)" ] || bad "a sysctl file appeared"
exit $failed
