# shellcheck shell=bash
# The xskxceiver test lists, sourced by the corpus scripts.
#
# 6.1 (linux-source-6.1, tools/testing/selftests/bpf/xskxceiver.h, enum test_type;
# selected with -t N through patches/xskxceiver-6.1-select.patch). Names are the
# enum's, without TEST_TYPE_.
XSK_TESTS_6_1=(RUN_TO_COMPLETION RUN_TO_COMPLETION_2K_FRAME RUN_TO_COMPLETION_SINGLE_PKT
  RX_POLL TX_POLL POLL_RXQ_TMOUT POLL_TXQ_TMOUT UNALIGNED ALIGNED_INV_DESC
  ALIGNED_INV_DESC_2K_FRAME UNALIGNED_INV_DESC HEADROOM TEARDOWN BIDI STATS_RX_DROPPED
  STATS_TX_INVALID_DESCS STATS_RX_FULL STATS_FILL_EMPTY BPF_RES)
# 6.12 (linux-source-6.12, xskxceiver.c, tests[]; `xskxceiver -l` prints it).
XSK_TESTS_6_12=(SEND_RECEIVE SEND_RECEIVE_2K_FRAME SEND_RECEIVE_SINGLE_PKT POLL_RX POLL_TX
  POLL_RXQ_FULL POLL_TXQ_FULL SEND_RECEIVE_UNALIGNED ALIGNED_INV_DESC
  ALIGNED_INV_DESC_2K_FRAME_SIZE UNALIGNED_INV_DESC UNALIGNED_INV_DESC_4001_FRAME_SIZE
  UMEM_HEADROOM TEARDOWN BIDIRECTIONAL STAT_RX_DROPPED STAT_TX_INVALID STAT_RX_FULL
  STAT_FILL_EMPTY XDP_PROG_CLEANUP XDP_DROP_HALF XDP_SHARED_UMEM XDP_METADATA_COPY
  XDP_METADATA_COPY_MULTI_BUFF SEND_RECEIVE_9K_PACKETS SEND_RECEIVE_UNALIGNED_9K_PACKETS
  ALIGNED_INV_DESC_MULTI_BUFF UNALIGNED_INV_DESC_MULTI_BUFF TOO_MANY_FRAGS
  HW_SW_MIN_RING_SIZE HW_SW_MAX_RING_SIZE)

# test_name SERIES N: the name of test N.
test_name() {
  local -n list=XSK_TESTS_${1//./_}
  [[ $2 =~ ^[0-9]+$ ]] && (($2 < ${#list[@]})) || return 1
  echo "${list[$2]}"
}

# default_tests SERIES: every test in skb and drv mode (test_xsk.sh's softirq run;
# its busy-poll run is MODE-busy:N).
default_tests() {
  local -n list=XSK_TESTS_${1//./_}
  local m i
  for m in skb drv; do
    for i in "${!list[@]}"; do printf '%s:%d ' "$m" "$i"; done
  done
}
