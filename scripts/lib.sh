# Shared settings for the testbed scripts. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FASTSWAP_CACHE:-/var/cache/fastswap}
# Installed by scripts/setup (Debian's linux-source-6.12).
KTARBALL=${FASTSWAP_KTARBALL:-/usr/src/linux-source-6.12.tar.xz}
BINDGEN=$CACHE/bindgen/bin/bindgen
RUSTC_KERNEL=/usr/bin/rustc
OUT=$ROOT/build                 # per-checkout products: modules, initramfs, logs

# The two-guest RDMA testbed (scripts/guest.sh), defined here only:
# TEST-NET-1 addresses (RFC 5737) on a QEMU socket network that exists only
# between the two guests. run_guest gives every guest these values on its
# kernel command line (TESTBED_APPEND), and tests/guest/lib.sh sets the
# same variables from it. (A test's "# server-log:" lines are matched as
# written, so the few naming an address keep it literal.)
SERVER_IP=192.0.2.1            # the far memory server guest
CLIENT_IP=192.0.2.2            # the client guest
OTHER_IP=192.0.2.3             # a second address tests add to the client guest
NOWHERE_IP=192.0.2.99          # an address no guest has (an unreachable server)
PORT=50000                     # farmem-server's port on the server guest
SERVER_MAC=52:54:00:12:34:01
CLIENT_MAC=52:54:00:12:34:02
NOWHERE_MAC=52:54:00:12:34:99  # a MAC no guest has: an ARP entry naming it cuts a path
CTL_PORT=7777                  # the server guest's control port (tests/scenarios/server-ctl.sh)
TESTBED_APPEND="fs_server_ip=$SERVER_IP fs_client_ip=$CLIENT_IP fs_other_ip=$OTHER_IP fs_nowhere_ip=$NOWHERE_IP fs_port=$PORT fs_nowhere_mac=$NOWHERE_MAC fs_ctl_port=$CTL_PORT"

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

# ensure_packages PKG...: installs the Debian packages that are missing
# (as root, with apt-get).
ensure_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "run as root to install packages (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# patch_kernel_source: extracts the tarball into $KSRC and applies
# kernel-patch/series, once (after kernel_env; the same tree serves every
# build with O=).
patch_kernel_source() {
    local p
    [ -n "$KSRC" ] || die "no kernel source to patch (a developer build tree is in use)"
    [ ! -f "$KSRC/.fastswap-patched" ] || return 0
    log "extracting and patching kernel source ($(basename "$KSRC"))"
    rm -rf "$KSRC" && mkdir -p "$KSRC"
    tar -C "$KSRC" --strip-components=1 -xf "$KTARBALL"
    for p in $(grep -v '^#' "$ROOT/kernel-patch/series"); do
        patch -d "$KSRC" -p1 --quiet --forward <"$ROOT/kernel-patch/$p" || die "patch $p does not apply"
    done
    touch "$KSRC/.fastswap-patched"
}

# check_config_fragments CONFIG FRAGMENT...: every option a fragment sets
# (=y, =m) or turns off is so in the resolved CONFIG, or the script dies
# naming it (olddefconfig drops an option whose dependencies are missing).
check_config_fragments() {
    local config=$1 f opt
    shift
    for f in "$@"; do
        for opt in $(grep -o '^CONFIG_[A-Z0-9_]*=[ym]' "$f"); do
            grep -qx "$opt" "$config" || die "kernel config lost $opt from $(basename "$f") (missing dependency?)"
        done
        for opt in $(sed -n 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1/p' "$f"); do
            grep -q "^$opt=" "$config" && die "kernel config has $opt, which $(basename "$f") turns off"
        done
    done
    return 0
}

# module_sources: the module sources and the top Makefile, relative to ROOT.
module_sources() {
    (cd "$ROOT" && { echo Makefile; find frontswap-mod dram-backend-mod rdma-backend-mod kmod-support \
        -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' -o -name Kbuild -o -name Makefile \); })
}
# module_stamp: what the modules are built from, as scripts/build records
# it in $MODOUT/.fastswap-built (after kernel_env): the module sources'
# contents and the kernel build tree.
module_stamp() {
    echo "$(cd "$ROOT" && module_sources | xargs -d '\n' sha256sum | sha256sum | cut -c1-16) $KOUT"
}
# sync_module_sources DST: the module sources copied to DST, where kbuild
# builds them against one kernel. Kbuild in 6.12 writes objects beside the
# sources (M=), so each kernel gets its own copy; only changed files are
# copied, so kbuild rebuilds only what changed.
sync_module_sources() {
    local dst=$1 f
    while IFS= read -r f; do
        if ! cmp -s "$ROOT/$f" "$dst/$f"; then
            mkdir -p "$dst/$(dirname "$f")"
            cp -p "$ROOT/$f" "$dst/$f"
        fi
    done < <(module_sources)
}
