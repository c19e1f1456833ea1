#!/usr/bin/env bash
# farmem-server's --version, --help and the exit statuses a supervisor acts
# on (farmem-server/src/exit.rs, README "Running on real machines"), for the
# failures that need no RDMA device: they happen before the server touches
# the memory limits or the RDMA CM, so this runs on any host.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/target/release/farmem-server
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
[ -x "$BIN" ] || { bad "$BIN is not built (scripts/build builds it)"; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/farmem-server/Cargo.toml" | head -1)
out=$("$BIN" --version 2>&1); rc=$?
if ((rc == 0)) && [ "$out" = "farmem-server $version" ]; then
    ok "--version: $out"
else
    bad "--version (exit $rc): $out (want farmem-server $version)"
fi
out=$("$BIN" --help 2>&1); rc=$?
if ((rc == 0)) && grep -q '^Exit status' <<<"$out" && grep -q '64  EX_USAGE' <<<"$out"; then
    ok "--help exits 0 and lists the exit statuses"
else
    bad "--help (exit $rc) lacks the exit statuses: $(tail -5 <<<"$out")"
fi

# expect STATUS WHY ARGS...: farmem-server ARGS exits with STATUS.
expect() {
    local want=$1 why=$2 out rc
    shift 2
    out=$(timeout 20 "$BIN" "$@" 2>&1); rc=$?
    if ((rc == want)); then
        ok "$why: exit $rc"
    else
        bad "$why: farmem-server $* exited $rc, not $want: $(tail -2 <<<"$out")"
    fi
}
expect 64 "no port" 
expect 64 "unknown option" 50000 --sise 4G
expect 64 "bad size" 50000 --size lots
expect 64 "port 0" 0
expect 64 "port out of range" 70000
expect 64 "--dead-client-grace not above --keepalive" 50000 --keepalive 1m
expect 78 "--size beyond this machine" 50000 --size 999T
expect 78 "--memory beyond this machine" 50000 --size 4M --memory 999T
exit $failed
