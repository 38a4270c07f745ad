#!/usr/bin/env bash
# Nightly soak over a list of kernels: for each kernel, one clean soak and one
# soak per --inject kind, each in its own qemu guest (`xskdbg soak --vm`), and
# `xskdbg doctor` in a guest of it (kind `doctor`, on a veth pair: exit 0).
# Expected: clean -> exit 0 with zero violations; every injected fault ->
# exit 1, caught by the recorder or with verdict `application` (`frame_leak`
# for leak). The artifacts (trace, report.txt/json, summary.json, console.log) of every run
# that did not go as expected are kept in a dated directory; runs that went as
# expected keep only their summary.json.
#
#   scripts/nightly/soak-kernels.sh [--kernels 'debian debian:6.12 /path/bzImage ...']
#       [--duration S] [--out DIR] [--xskdbg PATH] [--kinds 'clean fill-tx ...']
#       [-- EXTRA SOAK FLAGS]
#
# Defaults: --kernels 'debian debian:6.12' (Debian's newest 6.1 and 6.12 cloud
# kernels), --duration 20, --out /var/lib/xskdbg/nightly,
# --xskdbg target/release/xskdbg (built with cargo if missing), every kind.
# Exit: 0 every run as expected, 1 some run was not (see DIR/DATE/results.tsv),
# 2 usage or setup error. Needs root, qemu-system-x86 and busybox-static
# (scripts/setup.sh). A bzImage must have veth, virtio-pci/blk, XDP sockets
# and BPF built in (see ../shared/eval-kernel/ for a small config).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
kernels="debian debian:6.12"
duration=20
out_root=/var/lib/xskdbg/nightly
xskdbg=
kinds="doctor clean fill-tx double-fill double-complete reuse-before-complete leak"
extra=()
while (($#)); do
  case $1 in
    --kernels) kernels=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --out) out_root=$2; shift 2 ;;
    --xskdbg) xskdbg=$2; shift 2 ;;
    --kinds) kinds=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak-kernels: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z $xskdbg ]]; then
  xskdbg=${CARGO_TARGET_DIR:-$here/target}/release/xskdbg
  if [[ ! -x $xskdbg ]]; then
    echo "soak-kernels: building $xskdbg" >&2
    (cd "$here" && cargo build --release -p xskdbg >&2) || { echo "soak-kernels: cargo build failed" >&2; exit 2; }
  fi
fi
[[ -x $xskdbg ]] || { echo "soak-kernels: $xskdbg is not an executable (pass --xskdbg PATH)" >&2; exit 2; }

day=$(date -u +%Y-%m-%d)
dir=$out_root/$day
mkdir -p "$dir" || exit 2
results=$dir/results.tsv
[[ -f $results ]] || printf 'time\tkernel\tkind\texit\texpected\tstatus\tdir\n' >"$results"

# What a run must show to count as expected; prints the reason if not.
check() { # kind rc run_dir
  local kind=$1 rc=$2 d=$3 s=$3/summary.json
  if [[ $kind == doctor ]]; then
    [[ $rc == 0 ]] || { echo "doctor exit $rc"; return 1; }
    return 0
  fi
  [[ -f $s ]] || { echo "no summary.json"; return 1; }
  if [[ $kind == clean ]]; then
    [[ $rc == 0 ]] || { echo "exit $rc on a clean run"; return 1; }
    grep -q '"violations": 0' "$s" || { echo "violations on a clean run"; return 1; }
    return 0
  fi
  [[ $rc == 1 ]] || { echo "exit $rc, expected 1 (fault caught)"; return 1; }
  # The soak records itself: a verdict `instrumentation` means its own
  # recording is wrong, whatever else was found.
  ! grep -q '"instrumentation"' "$s" || { echo "verdict instrumentation: the soak's own recording is wrong"; return 1; }
  if [[ $kind == leak ]]; then
    grep -q '"frame_leak"' "$s" || { echo "no frame_leak finding"; return 1; }
  else
    # Caught by the recorder (its violation line), or named by the analyzer
    # with verdict application (double-complete and reuse-before-complete:
    # the recorder is what catches them; see soak/README.md).
    grep -q '"recorder_violation": "' "$s" || grep -q '"application"' "$s" \
      || { echo "neither a recorder violation nor verdict application"; return 1; }
  fi
  return 0
}

bad=0
for k in $kernels; do
  tag=$(basename "$k" | tr -c 'A-Za-z0-9._\n-' '_')
  for kind in $kinds; do
    run=$dir/$tag/$kind
    rm -rf "$run"
    mkdir -p "$run"
    echo "soak-kernels: $k $kind" >&2
    if [[ $kind == doctor ]]; then
      # The preflight on a veth pair, in a guest of that kernel: every check
      # (tracefs, BTF, which backends really load, XDP features, queues) passes.
      XSKDBG_VM=${XSKDBG_VM:-} "$here/scripts/vm/xskdbg-vm.sh" run --kernel "$k" --vcpus 1 \
        --timeout 600 --bin "$xskdbg:xskdbg" --out "$run/vm" \
        --cmd '/usr/sbin/ip link add d0 type veth peer name d1 && xskdbg doctor d0' \
        >"$run/stdout.txt" 2>"$run/stderr.txt"
      rc=$?
      # xskdbg-vm: 1 = the command failed; the doctor's own code is in the guest's rc.
      [[ -f $run/vm/guest/cmd/000/rc ]] && rc=$(cat "$run/vm/guest/cmd/000/rc")
      cp -f "$run/vm/console.log" "$run/console.log" 2>/dev/null
      rm -rf "$run/vm"
    else
      flags=(soak --vm --kernel "$k" --duration "$duration" --poison --probes auto --out "$run")
      [[ $kind == clean ]] || flags+=(--inject "$kind")
      "$xskdbg" "${flags[@]}" "${extra[@]}" >"$run/stdout.txt" 2>"$run/stderr.txt"
      rc=$?
    fi
    if why=$(check "$kind" "$rc" "$run"); then
      status=ok
      # As expected: keep the summary and what the command printed.
      find "$run" -type f ! -name summary.json ! -name stdout.txt -delete
    else
      status="FAILED: $why"
      bad=1
      # Traces compress well (text); keep everything else as it is.
      [[ -f $run/trace.txt ]] && gzip -f "$run/trace.txt"
    fi
    want=$([[ $kind == clean || $kind == doctor ]] && echo 0 || echo 1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%H:%M:%S)" "$k" "$kind" "$rc" "$want" "$status" "$run" >>"$results"
    echo "soak-kernels: $k $kind -> exit $rc: $status" >&2
  done
done
echo "$results"
exit $bad
