# Shared settings for the testbed scripts. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FASTSWAP_CACHE:-/var/cache/fastswap}
KTARBALL=/usr/src/linux-source-6.12.tar.xz
BINDGEN=$CACHE/bindgen/bin/bindgen
RUSTC_KERNEL=/usr/bin/rustc
OUT=$ROOT/build                 # per-checkout products: modules, initramfs, logs
SERVER_IP=192.0.2.1   # the testbed guests, see tests/guest/lib.sh

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The kernel build is keyed by source, patch series and config, so a second
# run (or CI on the same machine) reuses it and any change rebuilds it.
kernel_key() {
    {
        ls -l --time-style=+%s "$KTARBALL" | awk '{print $5, $6}'
        cat "$ROOT/kernel-patch/series"
        for p in $(grep -v '^#' "$ROOT/kernel-patch/series"); do cat "$ROOT/kernel-patch/$p"; done
        cat "$ROOT/configs/guest.config"
    } | sha256sum | cut -c1-16
}

KEY=$(kernel_key)
KSRC=$CACHE/kernel/$KEY/src
KOUT=$CACHE/kernel/$KEY/build
# Developers iterating on kernel-patch/ may point this at their own
# configured build tree instead.
if [ -n "${FASTSWAP_KBUILD:-}" ]; then
    KOUT=$FASTSWAP_KBUILD
fi
BZIMAGE=$KOUT/arch/x86/boot/bzImage

# make in the configured kernel build tree.
kmake() {
    make -C "$KOUT" LLVM=1 RUSTC="$RUSTC_KERNEL" BINDGEN="$BINDGEN" "$@"
}
