# Booting testbed guests. Sourced after lib.sh.

# QEMU under software emulation: this host's KVM does not run a stock guest
# kernel (see README). FASTSWAP_KVM=1 tries KVM where it works.
qemu_accel() {
    if [ "${FASTSWAP_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then echo "-accel kvm -cpu host"; else echo "-accel tcg -cpu max"; fi
}

# run_guest SCENARIO LOG [TIMEOUT_S] [NET] [MAC]: boots one guest that runs
# /tests/SCENARIO.sh, with a fresh 512 MiB virtio swap disk; output to LOG.
# NET is "none" or the options of a QEMU socket netdev for the RDMA testbed.
# The guest boots $BZIMAGE with $INITRAMFS (see kernel_env in lib.sh) unless
# GUEST_BZIMAGE / GUEST_INITRD name others; GUEST_MEM (MiB, default 1024)
# and GUEST_APPEND (kernel command line) are per guest. Every guest gets the
# testbed's addresses on its command line (TESTBED_APPEND, lib.sh); MAC is
# its network card's (default: the client guest's).
# The disk has no indirect descriptors: virtio's indirect table is a
# GFP_ATOMIC kmalloc per request, which under swap pressure (KASAN's
# quarantine makes it likely) fails with a "page allocation failure" splat.
# virtio falls back to the ring, so nothing is lost, but the splat fails
# the test that checks dmesg; with the ring alone no allocation is made.
run_guest() {
    local scenario=$1 logf=$2 timeout_s=${3:-900} net=${4:-none} mac=${5:-$CLIENT_MAC}
    local disk nic=(-nic none)
    disk=$(mktemp "$OUT/swap.XXXXXX.img")
    truncate -s 512M "$disk"
    if [ "$net" != none ]; then
        nic=(-netdev "socket,id=n0,$net" -device "virtio-net-pci,netdev=n0,mac=$mac")
    fi
    # shellcheck disable=SC2046
    timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 $(qemu_accel) \
        -m "${GUEST_MEM:-1024}" -smp 2 -nographic -no-reboot \
        -kernel "${GUEST_BZIMAGE:-$BZIMAGE}" -initrd "${GUEST_INITRD:-$INITRAMFS}" \
        -append "console=ttyS0 panic=-1 fstest=$scenario fswatchdog=$((timeout_s - 30)) $TESTBED_APPEND ${GUEST_APPEND:-}" \
        -drive file="$disk",if=none,id=swap,format=raw,cache=unsafe \
        -device virtio-blk-pci,drive=swap,indirect_desc=off \
        "${nic[@]}" </dev/null >"$logf" 2>&1
    local rc=$?
    rm -f "$disk"
    return $rc
}

# run_rdma_pair SCENARIO CLIENT_LOG SERVER_LOG [TIMEOUT_S]: boots a far
# memory server guest, waits for farmem-server to listen, then boots the
# client guest running SCENARIO. The two guests are joined by QEMU's unicast
# UDP socket backend on 127.0.0.1: each sends its frames to the other's
# port, with no connection to set up (the stream backend's listen/connect
# handshake proved racy). The ports are RDMA_PORT_BASE (default 20000)
# plus up to 9800, so jobs given bases 10000 apart never share one. A
# client line "FSTEST-KILL-SERVER" makes the
# harness kill the server guest (failure tests). A client line
# "FSTEST-KILL-CLIENT" makes it kill the client guest (SIGKILL to its QEMU,
# as a power loss: nothing reaches the server) and then boot a second
# client guest beside the same server guest, running the same scenario with
# "fsphase=2" on its kernel command line; CLIENT_LOG then holds the first
# guest's output followed by the second's (so the verdict sees the first
# phase's FSTEST-BEGIN and the second's FSTEST-RESULT).
# The server guest boots SERVER_BZIMAGE / SERVER_INITRD (default: the same
# kernel as the client); the client guest gets CLIENT_MEM and CLIENT_APPEND
# (plus BENCH_APPEND) as its GUEST_MEM and GUEST_APPEND.
run_rdma_pair() {
    local scenario=$1 clog=$2 slog=$3 timeout_s=${4:-900}
    local port=$((${RDMA_PORT_BASE:-20000} + RANDOM % 4900 * 2)) spid i
    rm -f "$clog" "$slog" "$clog.killed" # never read an earlier run's log
    local snet="udp=127.0.0.1:$((port + 1)),localaddr=127.0.0.1:$port"
    local cnet="udp=127.0.0.1:$port,localaddr=127.0.0.1:$((port + 1))"
    # The server pins one region per client: 256 MiB each, 1.5 GiB of RAM.
    # It outlives the client: it starts up to 2 minutes earlier.
    GUEST_MEM=1536 GUEST_APPEND="farmem_size=${FARMEM_SIZE:-256M} ${SERVER_APPEND:-}" \
        GUEST_BZIMAGE=${SERVER_BZIMAGE:-$BZIMAGE} GUEST_INITRD=${SERVER_INITRD:-$INITRAMFS} \
        run_guest farmem-server "$slog" "$((timeout_s + 150))" "$snet" "$SERVER_MAC" 2>/dev/null &
    spid=$!
    for ((i = 0; i < 240; i++)); do
        grep -q "listening on port" "$slog" 2>/dev/null && break
        kill -0 $spid 2>/dev/null || break
        sleep 0.5
    done
    if ! grep -q "listening on port" "$slog" 2>/dev/null; then
        kill $spid 2>/dev/null; wait $spid 2>/dev/null
        echo "FSTEST-RESULT $scenario FAIL (farmem-server did not start)" >>"$clog"
        return 1
    fi
    ( # Kill the server, or the client, when the client asks for it.
        while kill -0 $spid 2>/dev/null; do
            if grep -q "^FSTEST-KILL-SERVER" "$clog" 2>/dev/null; then
                pkill -KILL -f "localaddr=127.0.0.1:$port" 2>/dev/null
                break
            fi
            if grep -q "^FSTEST-KILL-CLIENT" "$clog" 2>/dev/null; then
                echo "harness: killing the client guest at $(date -u +%H:%M:%S.%3N) UTC" >"$clog.killed"
                # The client guest's QEMU (and its timeout wrapper).
                pkill -KILL -f "localaddr=127.0.0.1:$((port + 1))" 2>/dev/null
                break
            fi
            sleep 0.5
        done
    ) &
    local watcher=$!
    local started=$SECONDS
    # (stderr: no "Killed" notice from the shell when the guest is killed)
    { GUEST_MEM=${CLIENT_MEM:-1024} GUEST_APPEND="${CLIENT_APPEND:-} ${BENCH_APPEND:-}" \
        run_guest "$scenario" "$clog" "$timeout_s" "$cnet" || true; } 2>/dev/null
    if [ -f "$clog.killed" ]; then # written before the kill
        # Phase 2: a new client guest, with what is left of the time.
        local left=$((timeout_s - (SECONDS - started)))
        ((left >= 120)) || left=120
        mv "$clog" "$clog.phase1"
        GUEST_MEM=${CLIENT_MEM:-1024} GUEST_APPEND="${CLIENT_APPEND:-} ${BENCH_APPEND:-} fsphase=2" \
            run_guest "$scenario" "$clog.phase2" "$left" "$cnet" || true
        cat "$clog.phase1" "$clog.killed" "$clog.phase2" >"$clog" 2>/dev/null
        rm -f "$clog.phase1" "$clog.killed" "$clog.phase2"
    fi
    sleep 2 # let the server log the disconnects
    pkill -TERM -f "localaddr=127.0.0.1:$port" 2>/dev/null
    kill $watcher 2>/dev/null
    wait $spid $watcher 2>/dev/null
    return 0
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
    if grep -q "^FSTEST-WATCHDOG" "$logf"; then
        echo "hung: $(grep -m1 '^FSTEST-WATCHDOG' "$logf")"
        return 1
    fi
    if ! grep -q "^FSTEST-BEGIN" "$logf" 2>/dev/null; then
        echo "guest never reached its scenario (no FSTEST-BEGIN; timeout, crash or no boot)"
        return 1
    fi
    grep -q "^FSTEST-RESULT $scenario PASS" "$logf" && return 0
    grep -q "^FSTEST-RESULT $scenario FAIL" "$logf" && { echo "$(grep -m1 '^FAIL:' "$logf" || echo 'scenario failed')"; return 1; }
    echo "guest did not finish (timeout or crash)"
    return 1
}
