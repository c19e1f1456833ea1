# Booting testbed guests. Sourced after lib.sh.

# QEMU under software emulation: this host's KVM does not run a stock guest
# kernel (see README). FASTSWAP_KVM=1 tries KVM where it works.
qemu_accel() {
    if [ "${FASTSWAP_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then echo "-accel kvm -cpu host"; else echo "-accel tcg -cpu max"; fi
}

# run_guest SCENARIO LOG [TIMEOUT_S]: boots one guest that runs
# /tests/SCENARIO.sh, with a fresh 512 MiB virtio swap disk; output to LOG.
run_guest() {
    local scenario=$1 logf=$2 timeout_s=${3:-900}
    local disk
    disk=$(mktemp "$OUT/swap.XXXXXX.img")
    truncate -s 512M "$disk"
    # shellcheck disable=SC2046
    timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 $(qemu_accel) \
        -m 1024 -smp 2 -nographic -no-reboot \
        -kernel "$BZIMAGE" -initrd "$OUT/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 fstest=$scenario ${BENCH_APPEND:-}" \
        -drive file="$disk",if=virtio,format=raw,cache=unsafe \
        -nic none </dev/null >"$logf" 2>&1
    local rc=$?
    rm -f "$disk"
    return $rc
}

# Kernel messages that mean a test failed whatever the scenario printed.
KERNEL_TROUBLE='Oops|BUG:|WARNING:|Call Trace|Kernel panic|general protection|soft lockup|hung_task|RCU stall|UBSAN|KASAN'

# guest_verdict SCENARIO LOG: prints why the run failed; 0 if it passed.
guest_verdict() {
    local scenario=$1 logf=$2
    if grep -Eq "$KERNEL_TROUBLE" "$logf"; then
        echo "kernel reported trouble: $(grep -Em1 "$KERNEL_TROUBLE" "$logf")"
        return 1
    fi
    grep -q "^FSTEST-RESULT $scenario PASS" "$logf" && return 0
    grep -q "^FSTEST-RESULT $scenario FAIL" "$logf" && { echo "$(grep -m1 '^FAIL:' "$logf" || echo 'scenario failed')"; return 1; }
    echo "guest did not finish (timeout or crash)"
    return 1
}
