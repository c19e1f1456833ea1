# swapoff brings every page back from far memory intact; both modules then
# unload and the server frees this client's region: unload closes the
# session (without it the server would keep the region for a reconnect).
# server-log: closed its session; freed 256 MiB region
. /tests/lib.sh
rdma_client
paused_in_far_memory
ok "far memory holds $(backend pages) pages"
echo max > $CG/memory.max
expect "swapoff brings every page back" swapoff /dev/vda
[ "$(backend pages)" -eq 0 ] || fail "far memory still holds $(backend pages) pages"
touch /tmp/go
expect "data intact after swapoff" wait $pid
unload_modules rdma
dmesg_has "disconnected from the far memory server" || fail "no disconnect message"
sleep 3 # let the server see the disconnects
# A deliberate disconnect loses nothing and must not say so.
dmesg_has "pages held there are lost" && fail "a clean unload logged a loss: $(dmesg | grep 'are lost')"
ok "no loss logged at unload"
