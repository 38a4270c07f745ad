#!/usr/bin/env bash
# Installs what building and testing xskdbg need on a fresh Debian 12 machine,
# and nothing that is already there. Idempotent; safe to run before every build.
#
#   scripts/setup.sh          build dependencies only (enough for `xskdbg analyze`)
#   scripts/setup.sh test     everything the full test suite needs (qemu, busybox, ...)
set -euo pipefail

profile=${1:-build}

# BPF skeletons need clang and bpftool (vmlinux.h from kernel BTF); libbpf-sys
# builds libbpf from source against libelf and zlib.
build_pkgs=(clang llvm libelf-dev zlib1g-dev pkg-config bpftool make gcc)
# Root tests: network namespaces, veth, the qemu guest with Debian's 6.1 kernel,
# traffic, bench tools, headless Chromium for the HTML report; libxdp/libbpf
# headers for the C example examples/c/l2fwd (recorder/tests/l2fwd.rs builds it).
test_pkgs=(iproute2 ethtool kmod cpio qemu-system-x86 busybox-static iperf3 time python3
           chromium libxdp-dev libbpf-dev)

case "$profile" in
  build) want=("${build_pkgs[@]}") ;;
  test|all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "setup.sh: unknown profile '$profile' (use: build | test)" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The qemu tests find and download Debian's 6.1 kernel package through apt, so
# the package lists must exist even when every package above is installed.
need_lists=0
[[ $profile != build ]] && ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null && need_lists=1

if ((${#missing[@]} || need_lists)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ((${#missing[@]})); then
    echo "setup.sh: installing ${missing[*]}" >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [[ $profile != build ]]; then
  # The root tests and the recorder write into tracefs.
  if [[ ! -e /sys/kernel/tracing/trace ]] && [[ $(id -u) -eq 0 ]]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  fi
fi

command -v cargo >/dev/null || { echo "setup.sh: cargo not found: install Rust with rustup" >&2; exit 2; }
