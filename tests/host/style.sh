#!/usr/bin/env bash
# The code's style, as the README's standards state it: the userspace
# workspace is `cargo fmt` clean and `cargo clippy -- -D warnings` clean
# (all targets, tests included), and the kernel modules are formatted as
# the kernel's own Rust (`make rustfmtcheck`: rustfmt with the kernel
# tree's .rustfmt.toml, edition 2021, 100 columns; user-visible strings
# are not split, as in C), and every patch of kernel-patch/ passes the
# kernel's `scripts/checkpatch.pl --strict` with no error, warning or
# check. Each failure names the command to fix it.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# Kernel modules formatted to the kernel's rules.
MODULE_DIRS=(frontswap-mod dram-backend-mod rdma-backend-mod kmod-support)
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }

command -v cargo >/dev/null || { bad "cargo is missing"; exit 1; }
cargo fmt --version >/dev/null 2>&1 || { bad "rustfmt is missing (rustup component add rustfmt)"; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { bad "clippy is missing (rustup component add clippy)"; exit 1; }

cd "$ROOT" || exit 1
if out=$(cargo fmt --all --check 2>&1); then
    ok "cargo fmt --check: the workspace is formatted"
else
    bad "cargo fmt --check (run cargo fmt --all):"$'\n'"$(head -40 <<<"$out")"
fi
if out=$(cargo clippy --quiet --locked --workspace --all-targets -- -D warnings 2>&1); then
    ok "cargo clippy -D warnings: no warning in the workspace"
else
    bad "cargo clippy -D warnings:"$'\n'"$(head -60 <<<"$out")"
fi

# The kernel's .rustfmt.toml sets only these two options.
files=()
for d in "${MODULE_DIRS[@]}"; do files+=("$d"/*.rs); done
if out=$(rustfmt --check --edition 2021 --config newline_style=Unix "${files[@]}" 2>&1); then
    ok "rustfmt (the kernel's rules): ${MODULE_DIRS[*]} are formatted"
else
    bad "rustfmt (the kernel's rules; run rustfmt --edition 2021 on the files):"$'\n'"$(head -40 <<<"$out")"
fi
# checkpatch from the testbed's patched kernel source (scripts/build
# extracts it). Patches are read from standard input: given a path inside
# a git work tree, checkpatch takes some for source files.
# shellcheck source=../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
kernel_env normal
CHECKPATCH=${KSRC:+$KSRC/scripts/checkpatch.pl}
if [ -z "$CHECKPATCH" ] || [ ! -f "$CHECKPATCH" ]; then
    bad "no kernel source with scripts/checkpatch.pl (scripts/build extracts it; a developer tree from FASTSWAP_KBUILD has none here)"
else
    n=0 dirty=0
    for p in $(grep -v '^#' "$ROOT/kernel-patch/series"); do
        # Debian's python3 has the modules checkpatch's spdxcheck imports.
        out=$(PATH=/usr/bin:$PATH perl "$CHECKPATCH" --strict --terse --no-summary - \
            <"$ROOT/kernel-patch/$p" 2>&1)
        if [ -n "$out" ]; then
            bad "checkpatch --strict on $p:"$'\n'"$out"
            dirty=1
        fi
        n=$((n + 1))
    done
    ((dirty)) || ok "checkpatch --strict: nothing to report on the $n patches"
fi
exit $failed
