#!/usr/bin/env bash
# The kernel cache key must come from the kernel source tarball that
# scripts/setup installs, so no script may compute it before setup has run.
# On a fresh machine lib.sh used to compute it when sourced, from a missing
# tarball: scripts/build then built the modules against a kernel directory
# that scripts/build-kernel (a later process, with the real key) never made.
# This replays that order in a scratch cache with a stand-in tarball.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FASTSWAP_CACHE=$tmp/cache FASTSWAP_KTARBALL=$tmp/linux-source-6.12.tar.xz
unset FASTSWAP_KBUILD FASTSWAP_KBUILD_DEBUG
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }

# 1. Sourcing lib.sh with no tarball computes no key and no kernel paths.
out=$(source "$ROOT/scripts/lib.sh" 2>&1; echo "KEY=${KEY-} KOUT=${KOUT-} BZIMAGE=${BZIMAGE-}")
if [ "$(tail -1 <<<"$out")" = "KEY= KOUT= BZIMAGE=" ]; then
    ok "sourcing lib.sh without the tarball sets no KEY/KOUT/BZIMAGE"
else
    bad "sourcing lib.sh without the tarball computed: $(tail -1 <<<"$out")"
fi
if grep -q . <<<"$(head -n -1 <<<"$out")"; then
    bad "sourcing lib.sh printed: $(head -n -1 <<<"$out" | head -3)"
fi

# 2. Asking for the kernel with no tarball fails and names the tarball.
out=$( (source "$ROOT/scripts/lib.sh"; kernel_env normal; echo "KEY=$KEY") 2>&1 )
rc=$?
if ((rc != 0)) && grep -q "^error: .*$FASTSWAP_KTARBALL" <<<"$out" && ! grep -q '^KEY=' <<<"$out"; then
    ok "kernel_env without the tarball dies naming it"
else
    bad "kernel_env without the tarball: exit $rc, output: $(head -3 <<<"$out")"
fi

# 3. scripts/build's order: source lib.sh, then setup installs the tarball,
# then the kernel is asked for. The key it gets must be the one
# scripts/build-kernel (a new process) uses; a built marker in the scratch
# cache makes build-kernel report its key and stop.
for lane in normal debug; do
    rm -f "$FASTSWAP_KTARBALL"
    out=$( (
        source "$ROOT/scripts/lib.sh"
        # what setup does (the same file for both lanes)
        echo "linux source stand-in" >"$FASTSWAP_KTARBALL" && touch -d @1700000000 "$FASTSWAP_KTARBALL"
        if declare -F kernel_env >/dev/null; then kernel_env "$lane"; fi
        echo "$KEY $KOUT"
    ) 2>&1) || { bad "$lane: lib.sh/kernel_env failed: $out"; continue; }
    read -r key kout <<<"$(tail -1 <<<"$out")"
    case $kout in "$FASTSWAP_CACHE"/kernel/*) ;; *) bad "$lane: KOUT $kout is outside the cache"; continue ;; esac
    mkdir -p "$kout" && touch "$kout/.fastswap-built"
    flag=; [ "$lane" = debug ] && flag=--debug
    said=$("$ROOT/scripts/build-kernel" $flag 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
    if grep -qF "kernel $key is built ($kout)" <<<"$said"; then
        ok "$lane: the key computed after setup ($key) is the one build-kernel uses"
    else
        bad "$lane: computed key $key ($kout) but build-kernel said: $(head -3 <<<"$said")"
    fi
    eval "${lane}_key=$key"
done

# 4. The two kernels have different keys and pruning old keys keeps both.
if [ -n "${normal_key:-}" ] && [ -n "${debug_key:-}" ]; then
    [ "$normal_key" != "$debug_key" ] && ok "normal and debug kernels have different keys" ||
        bad "normal and debug kernels share the key $normal_key"
    mkdir -p "$FASTSWAP_CACHE/kernel/0123456789abcdef/build"
    out=$( (source "$ROOT/scripts/lib.sh"; kernel_cache_prune) 2>&1 ) || bad "kernel_cache_prune failed: $out"
    if [ -f "$FASTSWAP_CACHE/kernel/$normal_key/build/.fastswap-built" ] &&
        [ -f "$FASTSWAP_CACHE/kernel/$debug_key/build/.fastswap-built" ] &&
        [ ! -e "$FASTSWAP_CACHE/kernel/0123456789abcdef" ]; then
        ok "pruning the kernel cache keeps both kernels and removes a stale key"
    else
        bad "after pruning: $(ls "$FASTSWAP_CACHE/kernel" | tr '\n' ' ')"
    fi
fi
exit $failed
