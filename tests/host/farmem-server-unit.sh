#!/usr/bin/env bash
# packaging/farmem-server.service passes `systemd-analyze verify` with no
# complaint at all: verify exits 0 on a misspelt key or a value it cannot
# parse (it ignores the line and says so), so any output fails the test.
# verify also wants ExecStart's binary to exist: the copy checked here
# runs the farmem-server that scripts/build made instead of
# /usr/sbin/farmem-server, and nothing else is changed. The example
# environment file must set exactly the variables ExecStart uses.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$ROOT/packaging/farmem-server.service
DEFAULTS=$ROOT/packaging/farmem-server.default
BIN=$ROOT/target/release/farmem-server
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }

command -v systemd-analyze >/dev/null || { bad "systemd-analyze is missing (Debian package systemd; scripts/setup installs it)"; exit 1; }
[ -x "$BIN" ] || { bad "$BIN is not built (scripts/build builds it)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grep -q '^ExecStart=/usr/sbin/farmem-server ' "$UNIT" || bad "the unit's ExecStart does not run /usr/sbin/farmem-server"
sed "s|^ExecStart=/usr/sbin/farmem-server |ExecStart=$BIN |" "$UNIT" >"$tmp/farmem-server.service"
out=$(systemd-analyze verify "$tmp/farmem-server.service" 2>&1)
rc=$?
if ((rc == 0)) && [ -z "$out" ]; then
    ok "systemd-analyze verify: no complaint"
else
    bad "systemd-analyze verify (exit $rc): $out"
fi

# FARMEM_* variables: those ExecStart expands, those the unit defaults
# and those the example file sets must be the same set.
exec_vars=$(sed -n 's/^ExecStart=//p' "$UNIT" | grep -o 'FARMEM_[A-Z_]*' | sort -u | xargs)
unit_vars=$(sed -n 's/^Environment=//p' "$UNIT" | grep -o 'FARMEM_[A-Z_]*=' | tr -d = | sort -u | xargs)
file_vars=$(grep -o '^FARMEM_[A-Z_]*=' "$DEFAULTS" | tr -d = | sort -u | xargs)
if [ -n "$exec_vars" ] && [ "$exec_vars" = "$unit_vars" ] && [ "$exec_vars" = "$file_vars" ]; then
    ok "ExecStart, the unit's defaults and $(basename "$DEFAULTS") use the same variables ($exec_vars)"
else
    bad "variables differ: ExecStart: $exec_vars; Environment=: $unit_vars; $(basename "$DEFAULTS"): $file_vars"
fi
grep -q '^EnvironmentFile=-/etc/default/farmem-server$' "$UNIT" ||
    bad "the unit does not read /etc/default/farmem-server"
exit $failed
