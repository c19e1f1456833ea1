# Shared settings for the testbed scripts. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FASTSWAP_CACHE:-/var/cache/fastswap}
# Installed by scripts/setup (Debian's linux-source-6.12).
KTARBALL=${FASTSWAP_KTARBALL:-/usr/src/linux-source-6.12.tar.xz}
BINDGEN=$CACHE/bindgen/bin/bindgen
RUSTC_KERNEL=/usr/bin/rustc
OUT=$ROOT/build                 # per-checkout products: modules, initramfs, logs
SERVER_IP=192.0.2.1   # the testbed guests, see tests/guest/lib.sh

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Two guest kernels are built from the same source and patches: "normal"
# (tinyconfig + configs/guest.config) and "debug" (the same plus
# configs/debug.config: KASAN, lockdep, ...). Each is cached under a key of
# its inputs, so a second run (or CI on the same machine) reuses it, any
# change rebuilds it, and the two coexist.
kernel_fragments() {
    echo "$ROOT/configs/guest.config"
    [ "$1" = normal ] || echo "$ROOT/configs/$1.config"
}
# The patched source tree: tarball and patch series.
source_inputs() {
    [ -f "$KTARBALL" ] || die "kernel source $KTARBALL is missing: scripts/setup installs it (package linux-source-6.12)"
    ls -l --time-style=+%s "$KTARBALL" | awk '{print $5, $6}'
    cat "$ROOT/kernel-patch/series"
    for p in $(grep -v '^#' "$ROOT/kernel-patch/series"); do cat "$ROOT/kernel-patch/$p"; done
}
# kernel_key LANE: source inputs plus the lane's config fragments. (The
# normal key is the same hash as before the debug kernel existed.)
kernel_key() {
    local f
    { source_inputs; for f in $(kernel_fragments "$1"); do cat "$f"; done; } | sha256sum | cut -c1-16
}

# kernel_env [normal|debug]: the kernel a script builds or boots. Call it
# after scripts/setup has run (never at source time: on a fresh machine the
# tarball only exists after setup). Sets
#   KLANE KEY KSRC KOUT BZIMAGE   the kernel and its build tree
#   KFRAGS                        its config fragments (array)
#   MODOUT                        where our modules are built against it
#   INITRAMFS                     the initramfs with those modules
# A developer tree in FASTSWAP_KBUILD (normal) or FASTSWAP_KBUILD_DEBUG
# (debug) replaces the cached build; it needs no tarball.
kernel_env() {
    KLANE=${1:-normal}
    [[ $KLANE == normal || $KLANE == debug ]] || die "kernel_env: no kernel lane '$KLANE'"
    mapfile -t KFRAGS < <(kernel_fragments "$KLANE")
    local dev=FASTSWAP_KBUILD
    [ "$KLANE" = normal ] || dev=FASTSWAP_KBUILD_DEBUG
    if [ -n "${!dev:-}" ]; then
        KEY=dev KSRC= KOUT=${!dev}
    else
        local skey
        KEY=$(kernel_key "$KLANE") || exit 1
        skey=$(source_inputs | sha256sum | cut -c1-16) || exit 1
        KSRC=$CACHE/kernel/src-$skey
        KOUT=$CACHE/kernel/$KEY/build
    fi
    BZIMAGE=$KOUT/arch/x86/boot/bzImage
    MODOUT=$OUT/$KLANE/modules
    INITRAMFS=$OUT/$KLANE/initramfs.cpio.gz
}

# Removes cached kernels and sources that no current key names (the normal
# and the debug kernel are both kept).
kernel_cache_prune() {
    local keep=() lane
    [ -f "$KTARBALL" ] || return 0
    for lane in normal debug; do keep+=(! -name "$(kernel_key $lane)"); done
    keep+=(! -name "src-$(source_inputs | sha256sum | cut -c1-16)")
    [ -d "$CACHE/kernel" ] || return 0
    find "$CACHE/kernel" -mindepth 1 -maxdepth 1 -type d "${keep[@]}" -exec rm -rf {} +
}

# make in the configured kernel build tree (after kernel_env).
kmake() {
    make -C "$KOUT" LLVM=1 RUSTC="$RUSTC_KERNEL" BINDGEN="$BINDGEN" "$@"
}
