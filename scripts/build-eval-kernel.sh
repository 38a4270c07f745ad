#!/usr/bin/env bash
# Builds the evaluation kernel of issue 7: Debian's linux-source-6.1 with
# ../shared/eval-kernel/veth-race.patch (the seed story's veth race put back, plus
# the veth.race_window_us and xsk.reserve_delay_us knobs) and the small guest
# config beside it. The bzImage is cached outside the clone, so it is built once
# per machine (15-25 minutes on 2 cores); later runs print its path at once.
#
#   scripts/build-eval-kernel.sh            # prints the bzImage path on stdout
#   XSKDBG_CACHE=/elsewhere scripts/build-eval-kernel.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
eval_dir=${XSKDBG_EVAL_KERNEL_DIR:-$here/../shared/eval-kernel}
cache=${XSKDBG_CACHE:-/var/cache/xskdbg}/eval-kernel
patch=$eval_dir/veth-race.patch
config=$eval_dir/config-6.1.192

for f in "$patch" "$config"; do
  [[ -f $f ]] || { echo "build-eval-kernel: $f not found (set XSKDBG_EVAL_KERNEL_DIR to the eval-kernel directory)" >&2; exit 2; }
done

# The cache key covers the patch and the config, so editing either rebuilds.
key=$(cat "$patch" "$config" | sha256sum | cut -c1-12)
out=$cache/bzImage-6.1-vethrace-$key
if [[ -f $out ]]; then
  echo "$out"
  exit 0
fi

pkgs=(linux-source-6.1 bc flex bison libelf-dev libssl-dev dwarves make gcc xz-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "build-eval-kernel: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

src=$(ls /usr/src/linux-source-6.1*.tar.xz | head -n1)
work=$cache/build-$key
rm -rf "$work"
mkdir -p "$work"
echo "build-eval-kernel: unpacking $src into $work" >&2
tar -xf "$src" -C "$work" --strip-components=1
cd "$work"
patch -p1 --forward <"$patch" >&2
cp "$config" .config
make olddefconfig >&2
echo "build-eval-kernel: make bzImage (15-25 minutes on 2 cores)" >&2
make -j"$(nproc)" bzImage >"$cache/build-$key.log" 2>&1 || {
  tail -n 40 "$cache/build-$key.log" >&2
  echo "build-eval-kernel: the kernel build failed; full log: $cache/build-$key.log" >&2
  exit 1
}
cp arch/x86/boot/bzImage "$out.tmp"
mv "$out.tmp" "$out"
cd /
rm -rf "$work"
echo "$out"
