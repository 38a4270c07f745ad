#!/usr/bin/env bash
# Proves that a change leaves every report as it was: builds BASE's `xskdbg` and
# `xskdbg-tracegen` and this working tree's, runs both analyzers on the same inputs
# and compares their text and `--json` output and exit codes byte for byte.
#
#   scripts/check-reports.sh BASE [--keep DIR]
#
# BASE is any commit (e.g. HEAD, main~3, a tag). The working tree is compared as
# it is, uncommitted changes included. Inputs:
#   - every fixture trace of BASE (fixtures/traces/*.txt);
#   - a generated set from BASE's tracegen: every scenario in both vocabularies
#     (where the vocabulary can express it), wrapped and complete, two seeds;
#     HEAD's tracegen must write the same bytes for each;
#   - each of those also with `--history ADDR` (the first finding's frame, or a
#     frame of the trace when there is none);
#   - two traces gzip-compressed and two through stdin.
# Exit 0 when everything is identical, 1 on any difference (the first lines of
# each diff are printed; --keep DIR keeps all outputs), 2 on a usage or build error.
#
# Builds share a target directory outside the clone ($CHECK_TARGET_DIR, default
# /var/cache/xskdbg-check/target); BASE is checked out as a detached worktree
# under /var/cache/xskdbg-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
base_rev=$1; shift
keep=
while [[ $# -gt 0 ]]; do
  case $1 in
    --keep) keep=${2:?--keep needs a directory}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "check-reports: unknown argument $1" >&2; usage ;;
  esac
done

base=$(git rev-parse --verify "$base_rev^{commit}" 2>/dev/null) ||
  { echo "check-reports: $base_rev is not a commit" >&2; exit 2; }
cache=/var/cache/xskdbg-check
export CARGO_TARGET_DIR=${CHECK_TARGET_DIR:-$cache/target}
mkdir -p "$cache" "$CARGO_TARGET_DIR"

wt=$cache/base-$base
if [[ ! -d $wt ]]; then
  git worktree prune
  git worktree add --detach "$wt" "$base" >/dev/null
fi

work=$(mktemp -d /tmp/check-reports.XXXXXX)
if [[ -n $keep ]]; then mkdir -p "$keep"; out=$keep; else out=$work; fi
trap 'rm -rf "$work"' EXIT

# Build each tree and copy its two binaries aside: the target directory is shared,
# so the second build must not overwrite the first's binaries.
#
# Cargo names a workspace member's artifacts by the package's path relative to the
# workspace root and judges freshness by mtime, so two trees sharing one target
# directory look alike: a tree whose files are older than the other tree's last
# build would reuse that build's binaries (a false "identical"). Touching every
# tracked file first makes each build compile its own sources.
build() { # tree dest
  (cd "$1" && git ls-files -z | xargs -0 touch -c --) ||
    { echo "check-reports: cannot touch the sources of $1" >&2; exit 2; }
  (cd "$1" && cargo build -q -p xskdbg -p xskdbg-tracegen --bins) >&2 ||
    { echo "check-reports: build of $1 failed" >&2; exit 2; }
  mkdir -p "$2"
  cp "$CARGO_TARGET_DIR/debug/xskdbg" "$CARGO_TARGET_DIR/debug/xskdbg-tracegen" "$2/"
}
echo "check-reports: building BASE ${base:0:12} and the working tree" >&2
build "$wt" "$work/bin-base"
build "$top" "$work/bin-head"

inputs=$work/inputs
mkdir -p "$inputs"
cp "$wt"/fixtures/traces/*.txt "$inputs/"

# The generated set, from BASE's generator; HEAD's must write the same bytes.
gen_diff=0
for vocab in project freeform; do
  for sc in $("$work/bin-base/xskdbg-tracegen" --list); do
    for wrap in --wrap --no-wrap; do
      for seed in 1 2; do
        name=gen-$vocab-$sc$wrap-$seed.txt
        args=(--scenario "$sc" --vocab "$vocab" "$wrap" --seed "$seed" --steps 3000)
        if ! "$work/bin-base/xskdbg-tracegen" "${args[@]}" -o "$inputs/$name" 2>/dev/null; then
          continue # the vocabulary cannot express this scenario (BASE says so too)
        fi
        "$work/bin-head/xskdbg-tracegen" "${args[@]}" -o "$work/head-$name" 2>/dev/null || true
        if ! cmp -s "$inputs/$name" "$work/head-$name"; then
          echo "DIFF tracegen ${args[*]}: HEAD's generator writes other bytes" >&2
          gen_diff=1
        fi
      done
    done
  done
done

# A frame to follow with --history: the first finding's, else the first address seen.
history_addr() {
  python3 - "$1" <<'EOF'
import json, re, sys
try:
    r = json.load(open(sys.argv[1]))
    for f in r.get("findings", []):
        if f.get("addr"):
            print(f["addr"]); sys.exit(0)
except Exception:
    pass
EOF
}

n=0 diffs=0
compare() { # label, then the command's arguments after the binary (stdin from $stdin)
  local label=$1; shift
  local b=$out/$label.base h=$out/$label.head rc_b rc_h
  set +e
  "$work/bin-base/xskdbg" "$@" <"${stdin:-/dev/null}" >"$b" 2>"$b.err"; rc_b=$?
  "$work/bin-head/xskdbg" "$@" <"${stdin:-/dev/null}" >"$h" 2>"$h.err"; rc_h=$?
  set -e
  n=$((n + 1))
  if [[ $rc_b != "$rc_h" ]] || ! cmp -s "$b" "$h"; then
    diffs=$((diffs + 1))
    echo "DIFF $label (exit $rc_b -> $rc_h): xskdbg $*" >&2
    diff "$b" "$h" | head -20 >&2 || true
  fi
}

for t in "$inputs"/*.txt; do
  name=$(basename "$t" .txt)
  compare "$name.text" analyze --color never "$t"
  compare "$name.json" analyze --json "$t"
  addr=$(history_addr "$out/$name.json.base")
  if [[ -z $addr ]]; then
    addr=$(grep -o -m1 -E '(a=|addr=|d=)0x[0-9a-f]+|0x[0-9a-f]{5,}' "$t" | grep -o -E '0x[0-9a-f]+' | head -1 || true)
  fi
  if [[ -n $addr ]]; then
    compare "$name.history" analyze --color never --history "$addr" "$t"
    compare "$name.history.json" analyze --json --history "$addr" "$t"
  fi
done

# Compressed and piped input.
for name in seed-race gen-project-kernel-race--wrap-1; do
  [[ -f $inputs/$name.txt ]] || continue
  gzip -c "$inputs/$name.txt" >"$work/$name.txt.gz"
  compare "$name.gz.json" analyze --json "$work/$name.txt.gz"
  stdin=$inputs/$name.txt compare "$name.stdin.json" analyze --json -
  stdin=$inputs/$name.txt compare "$name.stdin.text" analyze --color never -
done
for name in seed-fifo gen-project-app-leak--no-wrap-1; do
  [[ -f $inputs/$name.txt ]] || continue
  gzip -c "$inputs/$name.txt" >"$work/$name.txt.gz"
  compare "$name.gz.text" analyze --color never "$work/$name.txt.gz"
done

echo "check-reports: $n reports compared against ${base:0:12}: $diffs differ; generator: $([[ $gen_diff == 0 ]] && echo same bytes || echo DIFFERS)" >&2
[[ $diffs == 0 && $gen_diff == 0 ]]
