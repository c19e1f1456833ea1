#!/usr/bin/env bash
# scripts/package's userspace and modules packages (README, "Packages"),
# made from what scripts/build built (scripts/test runs it first): the
# farmem-server binary and the modules for the testbed's normal kernel, so
# packaging takes seconds. Checked: the packages' metadata and contents
# (dpkg-deb), then both installed with dpkg into a scratch root,
# maintainer scripts included (chrootless: they act on DPKG_ROOT, and
# stand-ins for systemctl and depmod fail the test if they would touch this
# host). The files must land where the README says; the installed server
# and fastswapctl must run; the modules' vermagic must name the release the package is
# for, and depmod must index them there, and forget them on removal.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

KOUT=$(source "$ROOT/scripts/lib.sh" && kernel_env normal && echo "$KOUT") || { bad "no testbed kernel"; exit 1; }
KREL=$(cat "$KOUT/include/config/kernel.release" 2>/dev/null) || { bad "no testbed kernel build in $KOUT (scripts/build builds it)"; exit 1; }
ARCH=$(dpkg --print-architecture)
CARGO_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/farmem-server/Cargo.toml" | head -1)
CTL_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/fastswapctl/Cargo.toml" | head -1)

if ! out=$("$ROOT/scripts/package" --out "$tmp/out" userspace modules 2>&1); then
    bad "scripts/package failed: $(tail -5 <<<"$out")"
    exit 1
fi
TOOLS=$(ls "$tmp"/out/fastswap-tools_*_"$ARCH".deb 2>/dev/null)
MODS=$(ls "$tmp"/out/fastswap-modules-"$KREL"_*_"$ARCH".deb 2>/dev/null)
[ -n "$TOOLS" ] && [ -n "$MODS" ] || { bad "packages missing: $(ls "$tmp/out")"; exit 1; }

# Metadata.
field() { dpkg-deb -f "$1" "$2"; }
version=$(field "$TOOLS" Version)
if [[ $version =~ ^$CARGO_VERSION(\+git[0-9]+\.[0-9a-f]{7}(\.dirty)?)?$ ]] && [ "$(field "$MODS" Version)" = "$version" ]; then
    ok "both packages have version $version (farmem-server $CARGO_VERSION)"
else
    bad "versions: fastswap-tools $version, modules $(field "$MODS" Version); want ${CARGO_VERSION}[+gitN.HASH]"
fi
[ "$(basename "$TOOLS")" = "fastswap-tools_${version}_$ARCH.deb" ] || bad "file name $(basename "$TOOLS")"
for deb in "$TOOLS" "$MODS"; do
    [ "$(field "$deb" Architecture)" = "$ARCH" ] || bad "$(basename "$deb"): Architecture $(field "$deb" Architecture), not $ARCH"
    [ -n "$(field "$deb" Maintainer)" ] && [ -n "$(field "$deb" Description)" ] || bad "$(basename "$deb"): no Maintainer or Description"
done
[ "$(field "$TOOLS" Package)" = fastswap-tools ] || bad "Package: $(field "$TOOLS" Package)"
deps=$(field "$TOOLS" Depends)
if grep -q 'libc6 (>=' <<<"$deps" && grep -q librdmacm1 <<<"$deps" && grep -q libibverbs1 <<<"$deps"; then
    ok "fastswap-tools depends on $deps"
else
    bad "fastswap-tools: Depends '$deps' lacks libc6, librdmacm1 or libibverbs1"
fi
conffiles=$(dpkg-deb --ctrl-tarfile "$TOOLS" | tar -xOf - ./conffiles 2>/dev/null)
[ "$conffiles" = /etc/default/farmem-server ] && ok "conffiles: $conffiles" ||
    bad "conffiles are '$conffiles', not /etc/default/farmem-server"
if [ "$(field "$MODS" Package)" = "fastswap-modules-$KREL" ] &&
    grep -qE "(^|, )linux-image-${KREL//+/\\+}(,|$)" <<<"$(field "$MODS" Depends)" &&
    grep -qE '(^|, )kmod(,|$)' <<<"$(field "$MODS" Depends)"; then
    ok "fastswap-modules-$KREL depends on $(field "$MODS" Depends)"
else
    bad "modules: Package $(field "$MODS" Package), Depends $(field "$MODS" Depends); want fastswap-modules-$KREL, linux-image-$KREL and kmod"
fi

# Contents: where each file goes (the README names each), its mode, and
# that everything belongs to root.
want=(
    "-rwxr-xr-x /usr/sbin/farmem-server"
    "-rwxr-xr-x /usr/bin/fastswapctl"
    "-rw-r--r-- /lib/systemd/system/farmem-server.service"
    "-rw-r--r-- /etc/default/farmem-server"
    "-rw-r--r-- /usr/share/doc/fastswap-tools/copyright"
)
listing=$(dpkg-deb -c "$TOOLS")
for w in "${want[@]}"; do
    read -r mode path <<<"$w"
    grep -qE "^$mode root/root .* \.$path$" <<<"$listing" || bad "fastswap-tools lacks $path ($mode root/root)"
    grep -qF "$path" "$ROOT/README.md" || bad "the README does not say where $path goes"
done
mlisting=$(dpkg-deb -c "$MODS")
for m in fastswap fastswap_dram fastswap_rdma; do
    grep -qE "^-rw-r--r-- root/root .* \./lib/modules/${KREL//+/\\+}/updates/fastswap/$m\.ko(\.(xz|gz|zst))?$" <<<"$mlisting" ||
        bad "fastswap-modules-$KREL lacks /lib/modules/$KREL/updates/fastswap/$m.ko"
done
grep -qF '/lib/modules/<release>/updates/fastswap/' "$ROOT/README.md" || bad "the README does not say where the modules go"
if grep -qv ' root/root ' <<<"$listing$mlisting"; then
    bad "files not owned by root: $(grep -v ' root/root ' <<<"$listing$mlisting" | head -2)"
fi

# Install both into a scratch root with dpkg. The maintainer scripts run
# here (chrootless) with DPKG_ROOT set: systemctl must not be called, and
# depmod only into the scratch root.
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$tmp/bin"
touch "$root/var/lib/dpkg/status"
DEPMOD=$(PATH=$PATH:/sbin:/usr/sbin command -v depmod) || { bad "depmod is missing (package kmod)"; exit 1; }
cat >"$tmp/bin/depmod" <<EOF
#!/bin/sh
case " \$* " in *" -b $root "*) exec $DEPMOD "\$@" ;; esac
echo "depmod \$*" >>"$tmp/host-calls"; exit 1
EOF
printf '#!/bin/sh\necho "systemctl $*" >>"%s"\n' "$tmp/host-calls" >"$tmp/bin/systemctl"
chmod 755 "$tmp/bin/depmod" "$tmp/bin/systemctl"
dpkg_root() { PATH=$tmp/bin:$PATH:/sbin:/usr/sbin dpkg --root="$root" --force-script-chrootless --force-depends "$@" 2>&1; }

if out=$(dpkg_root -i "$TOOLS" "$MODS"); then
    ok "dpkg --root installed both packages"
else
    bad "dpkg --root -i failed: $(tail -5 <<<"$out")"
fi
for p in fastswap-tools "fastswap-modules-$KREL"; do
    s=$(dpkg --root="$root" -s "$p" 2>/dev/null | sed -n 's/^Status: //p')
    [ "$s" = "install ok installed" ] || bad "$p: status '$s' after installation"
done
for w in "${want[@]}"; do
    read -r _ path <<<"$w"
    [ -f "$root$path" ] || bad "$path is not in the installed root"
done
unit=$root/lib/systemd/system/farmem-server.service
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" 2>/dev/null)
[ -n "$exe" ] && [ -x "$root$exe" ] && ok "the unit's ExecStart program $exe is installed" ||
    bad "the unit's ExecStart program '$exe' is not installed"
envfile=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit" 2>/dev/null)
[ -n "$envfile" ] && [ -f "$root$envfile" ] && ok "the unit's EnvironmentFile $envfile is installed" ||
    bad "the unit's EnvironmentFile '$envfile' is not installed"
out=$("$root/usr/sbin/farmem-server" --version 2>&1)
[ "$out" = "farmem-server $CARGO_VERSION" ] && ok "installed farmem-server --version: $out" ||
    bad "installed farmem-server --version: $out"
out=$("$root/usr/bin/fastswapctl" --version 2>&1)
[ "$out" = "fastswapctl $CTL_VERSION" ] && ok "installed fastswapctl --version: $out" ||
    bad "installed fastswapctl --version: '$out', not 'fastswapctl $CTL_VERSION'"

mdir=$root/lib/modules/$KREL
bad_modules=0
for m in fastswap fastswap_dram fastswap_rdma; do
    f=$(ls "$mdir"/updates/fastswap/"$m".ko* 2>/dev/null | head -1)
    vm=$(modinfo -F vermagic "$f" 2>/dev/null)
    [ -n "$f" ] && [ "${vm%% *}" = "$KREL" ] || { bad "$m: vermagic '$vm' does not name $KREL"; bad_modules=1; }
    grep -q "^updates/fastswap/$m\.ko[^:]*:" "$mdir/modules.dep" 2>/dev/null ||
        { bad "postinst's depmod did not index $m in $mdir/modules.dep"; bad_modules=1; }
done
((bad_modules)) || ok "the modules' vermagic names $KREL, and depmod indexed them"

# Removal: the modules' postrm runs depmod when the kernel is still
# installed; fastswap-tools' purge removes its conffile.
mkdir -p "$mdir/kernel"
out=$(dpkg_root -r "fastswap-modules-$KREL") || bad "dpkg --root -r fastswap-modules-$KREL: $(tail -3 <<<"$out")"
if [ ! -e "$mdir/updates/fastswap/fastswap.ko" ] && [ -f "$mdir/modules.dep" ] && ! grep -q fastswap "$mdir/modules.dep"; then
    ok "removing the modules package removed them from depmod's index"
else
    bad "after removal: $(ls "$mdir/updates/fastswap" 2>&1 | head -1); modules.dep: $(head -1 "$mdir/modules.dep")"
fi
out=$(dpkg_root -P fastswap-tools) || bad "dpkg --root -P fastswap-tools: $(tail -3 <<<"$out")"
if [ ! -e "$root/etc/default/farmem-server" ] && [ ! -e "$root/usr/sbin/farmem-server" ] &&
    [ ! -e "$root/usr/bin/fastswapctl" ]; then
    ok "purging fastswap-tools removed its files and its conffile"
else
    bad "files left after purging fastswap-tools"
fi
if [ -s "$tmp/host-calls" ]; then
    bad "maintainer scripts acted on this host, not the scratch root: $(head -3 "$tmp/host-calls")"
fi
exit $failed
