#!/bin/sh
# One xskxceiver test, first unrecorded, then under `xskdbg record` once per
# backend, each run on a fresh veth pair set up the way the kernel's test_xsk.sh
# does it. Runs as root in an xskdbg-vmtest guest (busybox sh; host side:
# run-xskxceiver.sh) or on the host (dash; host-xskxceiver.sh).
#
#   guest-xsk.sh LAYOUT MODE TEST NAME 'BACKENDS' [busy]
#
# LAYOUT: netns (6.1's test_xsk.sh: the second veth end in a namespace, `-i v1,ns`),
# flat (6.12's: both ends in the root namespace), or inns (both ends in a private
# namespace, xskxceiver run in it, the probes filtered to it by its cookie: the
# host, where other work shares the root namespace). MODE: skb or drv. TEST: the
# test's number (6.12's -t; 6.1's enum test_type through our -t patch). `busy`:
# busy poll (-b, napi_defer_hard_irqs=2, gro_flush_timeout=200000, as test_xsk.sh).
# Results: $XSKDBG_OUT/RUN/{plain,BACKEND}.{stdout,rc,secs}, BACKEND.trace.gz,
# BACKEND.report (record's own analysis), BACKEND.stderr (record's notes, with
# "command exit status"), where RUN = MODE[-busy]-NN-NAME. Each run is limited to
# $XSK_TIMEOUT s (120); veth and namespace names carry $XSK_TAG (for the host).
# XSK_ONE_IF_FAILING=1: when the test fails unrecorded, record it with the first
# backend only and leave BACKEND.skipped (the reason) for the others: a failing
# test only has to fail the same way recorded, and the invalid-descriptor tests
# fail by a 30 s timeout per run (the nightly's time, docs/CORPUS.md).
set -u
layout=$1 mode=$2 test=$3 name=$4 backends=$5 busy=${6:-}
limit=${XSK_TIMEOUT:-120}
tag=${XSK_TAG:-}
run=$mode${busy:+-busy}-$(printf %02d "$test")-$name
dir=$XSKDBG_OUT/$run
mkdir -p "$dir"
# iproute2 keeps namespaces in /run/netns; 6.1's xskxceiver opens /var/run/netns/NAME.
[ -e /var/run ] || ln -s /run /var/run
# The unaligned-mode tests map their UMEM with 2 MB huge pages (test_xsk.sh leaves
# that to the machine; a fresh guest has none).
[ "$(cat /proc/sys/vm/nr_hugepages)" -ge 32 ] || echo 32 > /proc/sys/vm/nr_hugepages
IP=/usr/sbin/ip
[ -x $IP ] || IP=/sbin/ip
v0=xv0$tag v1=xv1$tag ns=xskns$tag
# In the inns layout every network command runs inside $ns.
X=
[ "$layout" = inns ] && X="$IP netns exec $ns"

setup() {
  if [ "$layout" = inns ]; then
    $IP netns add $ns || return 1
    $X $IP link set dev lo up
  fi
  $X $IP link add $v0 numtxqueues 4 numrxqueues 4 type veth peer name $v1 numtxqueues 4 numrxqueues 4 || return 1
  $X sh -c "echo 1 > /proc/sys/net/ipv6/conf/$v0/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/$v1/disable_ipv6" 2>/dev/null
  if [ -n "$busy" ]; then
    for v in $v0 $v1; do
      $X sh -c "echo 2 > /sys/class/net/$v/napi_defer_hard_irqs; echo 200000 > /sys/class/net/$v/gro_flush_timeout"
    done
  fi
  if [ "$layout" = netns ]; then
    $IP netns add $ns || return 1
    $IP link set $v1 netns $ns
    $IP netns exec $ns $IP link set $v1 mtu 1500
    $IP netns exec $ns $IP link set $v1 up
    $IP netns exec $ns $IP link set dev lo up
  else
    $X $IP link set $v1 mtu 1500
    $X $IP link set $v1 up
  fi
  $X $IP link set $v0 mtu 1500
  $X $IP link set $v0 up
}

teardown() {
  $X $IP link del $v0 2>/dev/null
  [ "$layout" != flat ] && $IP netns del $ns 2>/dev/null
  return 0
}

xsk_cmd() {
  if [ "$layout" = netns ]; then
    echo "xskxceiver -i $v0 -i $v1,$ns -m $mode -t $test ${busy:+-b}"
  else
    echo "$X xskxceiver -i $v0 -i $v1 -m $mode -t $test ${busy:+-b}"
  fi
}

# SO_NETNS_COOKIE of $ns, for `record --netns-cookie` (inns only).
cookie() {
  $X python3 -c 'import socket, struct; s = socket.socket(); print(struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 71, 8))[0])'
}

now() { cut -d' ' -f1 /proc/uptime; }

# One run: plain (no recording) or a backend.
one() {
  what=$1
  teardown
  if ! setup >"$dir/$what.setup" 2>&1; then
    echo setup-failed > "$dir/$what.rc"
    teardown
    return
  fi
  t0=$(now)
  if [ "$what" = plain ]; then
    # shellcheck disable=SC2046
    timeout -s KILL "$limit" $(xsk_cmd) >"$dir/plain.stdout" 2>"$dir/plain.stderr"
    echo $? > "$dir/plain.rc"
  else
    filter=
    [ "$layout" = inns ] && filter="--netns-cookie $(cookie)"
    # xskxceiver's own output goes to its files; record's exit is the analyzer's
    # verdict, the program's status is in record's stderr ("command exit status: N").
    # shellcheck disable=SC2086
    timeout -s KILL "$((limit + 30))" xskdbg record --backend "$what" --buffer-kb 8192 \
      --instance "corpus$tag" $filter --out "$dir/$what.trace" -- \
      sh -c "exec $(xsk_cmd) >'$dir/$what.stdout' 2>'$dir/$what.xstderr'" \
      >"$dir/$what.report" 2>"$dir/$what.stderr"
    echo $? > "$dir/$what.rc"
    [ -f "$dir/$what.trace" ] && gzip -1 -f "$dir/$what.trace"
  fi
  echo "$t0 $(now)" > "$dir/$what.secs"
  teardown
}

echo "$run: $(uname -r)" > "$dir/info"
one plain
first=1
for b in $backends; do
  if [ -z "$first" ] && [ "${XSK_ONE_IF_FAILING:-}" = 1 ] && ! grep -q '^ok [0-9]' "$dir/plain.stdout" 2>/dev/null; then
    echo "not run: the test did not pass unrecorded, recorded with the first backend only" > "$dir/$b.skipped"
    continue
  fi
  first=
  one "$b"
done
# A leftover of a killed record would spoil the next test's run.
[ -z "$tag" ] && xskdbg probes detach --all >/dev/null 2>&1
exit 0
