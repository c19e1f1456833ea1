#!/bin/sh
# The server guest's control port (farmem-server.sh runs it on TCP port
# CTL_PORT): a client guest test sends one command word on a line
# (server_ctl in lib.sh) and gets the result back; each command and its
# result are also printed on the server guest's console, where a test's
# "# server-log:" lines can assert them. Only the testbed's private
# network reaches it. The commands act on this guest only:
#   rdma-link-delete   `rdma link delete rxe0` in the background; waits up to
#                      45 s for it; prints "returned in S s" (and its exit
#                      status) or, if it is still blocked, its kernel stack
#   rdma-link-add      `rdma link add rxe0 type rxe netdev eth0`
#   hung-tasks         how many hung-task reports the kernel has logged
#   second-server      starts a second farmem-server, listening on every
#                      address (no --bind) on port 50001 with 64 MiB regions
#                      and a 128 MiB budget; answers once it listens
# Run by busybox nc -e: standard input and output are the connection,
# standard error is the console.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
say() { echo "$*"; echo "server-ctl: $*" >&2; }
# Hundredths of a second since boot.
now_cs() { tr -d . < /proc/uptime | cut -d' ' -f1; }

read -r cmd || exit 0
echo "server-ctl: command $cmd" >&2
case $cmd in
rdma-link-delete)
    # A removal that blocks longer than this is reported by the kernel
    # (the default is 60 s): the test's bound is below that.
    echo 10 > /proc/sys/kernel/hung_task_timeout_secs
    t0=$(now_cs)
    rdma link delete rxe0 </dev/null >/dev/null 2>/tmp/rdma-delete.err &
    rm_pid=$!
    while kill -0 $rm_pid 2>/dev/null; do
        if [ $(($(now_cs) - t0)) -ge 4500 ]; then
            say "rdma link delete rxe0 still blocked after 45 s; its kernel stack:"
            sed 's/^/    /' /proc/$rm_pid/stack | while IFS= read -r l; do say "$l"; done
            # Who keeps a verbs context open: descriptors and mappings of
            # the uverbs device (its node is gone by now: "(deleted)").
            for d in /proc/[0-9]*; do
                fds=$(ls -l $d/fd 2>/dev/null | grep -c uverbs)
                maps=$(grep -c uverbs $d/maps 2>/dev/null)
                [ "${fds:-0}" = 0 ] && [ "${maps:-0}" = 0 ] && continue
                say "    pid ${d#/proc/} ($(cat $d/comm)) has $fds uverbs descriptor(s) and $maps uverbs mapping(s)"
            done
            exit 0
        fi
        sleep 0.2
    done
    wait $rm_pid
    rc=$?
    t=$(($(now_cs) - t0))
    say "rdma link delete rxe0 returned in $((t / 100)).$(printf %02d $((t % 100))) s (exit $rc) $(cat /tmp/rdma-delete.err)"
    ;;
rdma-link-add)
    if rdma link add rxe0 type rxe netdev eth0 </dev/null >/dev/null 2>/tmp/rdma-add.err; then
        say "rdma link add rxe0: done"
    else
        say "rdma link add rxe0 failed: $(cat /tmp/rdma-add.err)"
    fi
    ;;
hung-tasks)
    say "hung tasks reported: $(dmesg | grep -c 'blocked for more than')"
    ;;
second-server)
    # Its output goes to the console too; none of its descriptors is the
    # connection, which closes when this script ends.
    farmem-server 50001 --size 64M --memory 128M </dev/null 2>&1 | tee /tmp/second-server.log >&2 &
    i=0
    until grep -q "listening on port 50001" /tmp/second-server.log 2>/dev/null; do
        i=$((i + 1))
        [ $i -le 100 ] || { say "the second farmem-server did not start: $(tail -3 /tmp/second-server.log)"; exit 0; }
        sleep 0.2
    done
    say "second farmem-server listening on port 50001"
    ;;
*)
    say "unknown command '$cmd'"
    ;;
esac
