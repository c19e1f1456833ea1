# A reader SIGKILLed while its fault waits out an outage (as the OOM killer
# would) must not break the page for anyone else. Four tmpfs files are
# swapped out to far memory; the path to the server is cut (a bad ARP
# entry, as rdma-link-flap); four readers fault them back and wait; one is
# SIGKILLed while waiting. Its wait is uninterruptible: it stays until the
# client reconnects, then dies. Had it given up, its page would be left
# locked but not up to date, and shmem would turn that into a permanent
# swap-in error (EIO on every later read; anonymous memory would give
# SIGBUS to the page's other mappers). Afterwards every file reads back
# whole and matches its checksum, and the other readers' checksums match
# (their readahead reads were parked during the outage and read again).
# server-log: re-attached to its region
. /tests/lib.sh
rdma_client
load_rdma reconnect_timeout_s=120
cgroup memory.max $(by_kernel 24M 16M)
mkdir -p /shm && mount -t tmpfs -o size=128M shm /shm || fail "mounting a tmpfs"

files="1 2 3 4"
for i in $files; do
    in_cgroup sh -c "dd if=/dev/urandom bs=1M count=$(by_kernel 12 8) 2>/dev/null | tee /shm/f$i | md5sum | cut -d' ' -f1 > /tmp/f$i.md5" ||
        fail "writing /shm/f$i"
done
[ "$(backend pages)" -gt 0 ] || fail "no page is held in far memory"
ok "far memory holds $(backend pages) pages of four tmpfs files; cutting the path to the server"

cut_path
for i in $files; do
    in_cgroup sh -c "md5sum /shm/f$i | cut -d' ' -f1 > /tmp/r$i.md5" &
    eval "reader$i=\$!"
done
# A transfer times out after 4 s; then the backend reconnects and the
# faults wait.
await 30 1 dmesg_has "reconnecting to $SERVER_IP:$PORT" || fail "no 'reconnecting' line in dmesg 30 s into the outage"
sleep 2
# The reader itself is a child of the sh in $reader1: kill every process
# of the cgroup reading /shm/f1.
victims=$(for p in $(cat $CG/cgroup.procs); do
    grep -q /shm/f1 /proc/$p/cmdline 2>/dev/null && echo $p
done)
[ -n "$victims" ] || fail "no reader of /shm/f1 to kill (it finished during the outage?)"
victims=$(echo $victims)
kill -9 $victims
ok "SIGKILLed the reader of /shm/f1 ($victims) while it waited for the reconnect"
sleep 3
alive=0
for p in $victims; do [ -d /proc/$p ] && alive=1; done
[ $alive = 1 ] && ok "the killed reader still waits (uninterruptibly) for the reconnect"
restore_path

await 60 1 dmesg_has "reconnected to $SERVER_IP:$PORT" || fail "no 'reconnected' line in dmesg 60 s after the outage"
ok "dmesg: $(dmesg | grep -m1 "reconnected to $SERVER_IP")"
for i in $files; do
    eval "wait \$reader$i"
done
for p in $victims; do [ -d /proc/$p ] && fail "the killed reader $p is still there after the reconnect"; done
for i in 2 3 4; do
    [ "$(cat /tmp/r$i.md5)" = "$(cat /tmp/f$i.md5)" ] || fail "the reader of /shm/f$i read wrong data through the outage"
done
ok "the three other readers read their files whole through the outage"
for i in $files; do
    sum=$(in_cgroup md5sum /shm/f$i) || fail "reading /shm/f$i after the reconnect (an I/O error is the killed reader's page)"
    [ "${sum%% *}" = "$(cat /tmp/f$i.md5)" ] || fail "/shm/f$i reads back wrong after the reconnect"
done
ok "every file reads back whole after the reconnect, the killed reader's too"
dmesg_has "far memory server $SERVER_IP:$PORT" && fail "the far memory was declared lost"
[ "$(cat /sys/kernel/mm/fastswap/state)" = active ] || fail "state $(cat /sys/kernel/mm/fastswap/state) after reconnecting"
dmesg | grep -q "BUG\|Oops\|WARNING" && fail "a kernel warning or oops"
umount /shm || fail "umount /shm"
# The checksum files in /tmp were written from the cgroup and may be held
# in far memory too: swapoff reads every page back (and would hang on a
# page left locked) before the modules go.
swapoff /dev/vda &
sp=$!
for s in $(seq 60); do kill -0 $sp 2>/dev/null || break; sleep 1; done
kill -0 $sp 2>/dev/null && fail "swapoff still runs after 60 s (a page left locked?)"
wait $sp || fail "swapoff failed"
[ "$(backend pages)" = 0 ] || fail "$(backend pages) pages still held after swapoff"
unload_modules rdma
