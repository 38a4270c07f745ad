#!/usr/bin/env bash
# Builds the kernel's own AF_XDP selftest program, xskxceiver, statically from
# Debian's linux-source-VER (6.1 or 6.12): tools/lib/bpf (libbpf.a) from the same
# tree, then xskxceiver.c + xsk.c (6.12 also: the xsk_xdp_progs BPF skeleton,
# network_helpers.c, tools/lib/find_bit.c), the way tools/testing/selftests/bpf/
# Makefile does it but without the rest of the selftests. 6.1 gets
# patches/xskxceiver-6.1-select.patch (-m MODE -t N: one test per run, as 6.5+ has);
# both get THREAD_TMOUT 30 s instead of 3 (qemu TCG, see below).
# Cached outside the clone, keyed by the package version and our patch, so it is
# built once per machine (1-3 minutes on 2 cores); later runs print the path at once.
#
#   scripts/corpus/build-xskxceiver.sh 6.1|6.12     # prints the binary's path on stdout
#   XSKDBG_CACHE=/elsewhere scripts/corpus/build-xskxceiver.sh 6.12
#   scripts/corpus/build-xskxceiver.sh 6.12 --instrument [--plant double|leak]
#
# --instrument (6.12 only): the instrumented third-party program of docs/CORPUS.md,
# patches/xskxceiver-6.12-xskdbg.patch: xskxceiver calls the recorder's C API
# (recorder/include/xskdbg.h) in its fill, receive, transmit and completion paths
# when $XSKDBG_INSTANCE is set (`xskdbg record` sets it), linked statically with
# libxskdbg_recorder.a ($XSKDBG_RECORDER_LIB, a directory holding it; otherwise
# `cargo build --release -p xskdbg-recorder` into $CARGO_TARGET_DIR or target/).
# --plant adds a one-line bug in its recycle path (patches/xskxceiver-6.12-plant-
# KIND.patch): `double` puts the previous packet's frame on FILL again at the 100th
# packet (frame returned twice, this one lost), `leak` never returns the 100th
# packet's frame. The cache key includes the library, so a new recorder rebuilds.
#
# The source: /usr/src/linux-source-VER.tar.xz when that package is installed
# (the eval kernel installs 6.1), else `apt-get download linux-source-VER` into the
# cache. Needs gcc, clang, bpftool, make, libelf-dev, zlib1g-dev (scripts/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ver=${1:-}
case $ver in
  6.1|6.12) ;;
  *) echo "build-xskxceiver: give 6.1 or 6.12" >&2; exit 2 ;;
esac
shift
instrument=
plant=
while (($#)); do
  case $1 in
    --instrument) instrument=1; shift ;;
    --plant) plant=${2:-}; shift 2 || { echo "build-xskxceiver: --plant needs double or leak" >&2; exit 2; } ;;
    *) echo "build-xskxceiver: unknown argument $1" >&2; exit 2 ;;
  esac
done
case $plant in
  ''|double|leak) ;;
  *) echo "build-xskxceiver: --plant $plant: give double or leak" >&2; exit 2 ;;
esac
if [[ -n $plant && -z $instrument ]]; then
  echo "build-xskxceiver: --plant needs --instrument" >&2; exit 2
fi
if [[ -n $instrument && $ver != 6.12 ]]; then
  echo "build-xskxceiver: --instrument is made for 6.12's xskxceiver only" >&2; exit 2
fi
reclib=
if [[ -n $instrument ]]; then
  repo=$(cd "$here/../.." && pwd)
  if [[ -n ${XSKDBG_RECORDER_LIB:-} ]]; then
    reclib=$XSKDBG_RECORDER_LIB/libxskdbg_recorder.a
  else
    echo "build-xskxceiver: cargo build --release -p xskdbg-recorder" >&2
    (cd "$repo" && cargo build -q --release -p xskdbg-recorder >&2) || {
      echo "build-xskxceiver: building the recorder failed" >&2; exit 2; }
    reclib=${CARGO_TARGET_DIR:-$repo/target}/release/libxskdbg_recorder.a
  fi
  [[ -f $reclib ]] || { echo "build-xskxceiver: $reclib not found" >&2; exit 2; }
  recinc=$repo/recorder/include
fi
cache=${XSKDBG_CACHE:-/var/cache/xskdbg}/xskxceiver
pkg=linux-source-$ver
mkdir -p "$cache"

# The source tarball and its exact version.
tarball=/usr/src/$pkg.tar.xz
if [[ -f $tarball ]] && pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) && [[ -n $pkgver ]]; then
  :
else
  pkgver=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^  Candidate: //p')
  if [[ -z $pkgver || $pkgver == "(none)" ]]; then
    echo "build-xskxceiver: apt offers no $pkg (run apt-get update)" >&2
    exit 2
  fi
  tarball=$cache/$pkg-$pkgver.tar.xz
  if [[ ! -f $tarball ]]; then
    dl=$(mktemp -d "$cache/.dl-XXXXXX")
    echo "build-xskxceiver: apt-get download $pkg=$pkgver" >&2
    (cd "$dl" && apt-get download -q "$pkg=$pkgver" >&2 2>/dev/null) || {
      rm -rf "$dl"; echo "build-xskxceiver: apt-get download $pkg=$pkgver failed" >&2; exit 2; }
    dpkg-deb --fsys-tarfile "$dl"/*.deb | tar -x -C "$dl" "./usr/src/$pkg.tar.xz"
    mv "$dl/usr/src/$pkg.tar.xz" "$tarball"
    rm -rf "$dl"
  fi
fi

patches=()
[[ $ver == 6.1 ]] && patches=("$here/patches/xskxceiver-6.1-select.patch")
variant=
if [[ -n $instrument ]]; then
  patches+=("$here/patches/xskxceiver-6.12-xskdbg.patch")
  [[ -n $plant ]] && patches+=("$here/patches/xskxceiver-6.12-plant-$plant.patch")
  variant=-xskdbg${plant:+-$plant}
fi
key=$( (echo "$pkgver"; cat "$0" ${patches[@]+"${patches[@]}"}
        if [[ -n $instrument ]]; then cat "$reclib" "$recinc/xskdbg.h"; fi) | sha256sum | cut -c1-12)
out=$cache/xskxceiver-$ver$variant-$pkgver-$key
if [[ -x $out ]]; then
  echo "$out"
  exit 0
fi

work=$cache/build-$ver-$key
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
log=$cache/build-$ver-$key.log
: >"$log"
echo "build-xskxceiver: unpacking tools/ of $tarball" >&2
tar -xJf "$tarball" -C "$work" --strip-components=1 \
  "$pkg/tools" "$pkg/scripts" "$pkg/include/uapi" "$pkg/Makefile"
cd "$work"
for p in ${patches[@]+"${patches[@]}"}; do
  patch -p1 --forward <"$p" >&2
done
# A test must receive (or send) its packets within THREAD_TMOUT seconds: 3 s is
# made for hardware; under qemu TCG with probes on, a recorded run of 4096
# packets needs more. Ten times as long, for the unrecorded run too, so both
# runs of a test face the same limit. The poll timeout tests use POLL_TMOUT.
sed -i 's/^#define THREAD_TMOUT 3$/#define THREAD_TMOUT 30/' tools/testing/selftests/bpf/xskxceiver.h
grep -q '^#define THREAD_TMOUT 30$' tools/testing/selftests/bpf/xskxceiver.h || {
  echo "build-xskxceiver: THREAD_TMOUT not found in xskxceiver.h" >&2; exit 1; }

fail() {
  tail -n 40 "$log" >&2
  echo "build-xskxceiver: $1 failed; full log: $log" >&2
  exit 1
}

# libbpf.a and its headers (bpf/*.h), from this tree.
lib=$work/libbpf-out
mkdir -p "$lib"
echo "build-xskxceiver: building libbpf" >&2
make -C tools/lib/bpf -j"$(nproc)" BUILD_STATIC_ONLY=1 OUTPUT="$lib/" \
  DESTDIR="$lib/root" prefix=/usr install >>"$log" 2>&1 || fail "libbpf"
libdir=$(dirname "$(find "$lib/root" -name libbpf.a | head -n1)")
sel=tools/testing/selftests/bpf
cflags=(-g -O2 -Wall -static -D_GNU_SOURCE
  -I"$sel" -I"$lib/root/usr/include" -I"$lib" -Itools/include -Itools/include/uapi
  -Itools/testing/selftests)
srcs=("$sel/xskxceiver.c" "$sel/xsk.c")
if [[ $ver == 6.12 ]]; then
  # The XDP programs xskxceiver loads come as a libbpf skeleton.
  echo "build-xskxceiver: building the xsk_xdp_progs skeleton" >&2
  clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$sel" -I"$lib/root/usr/include" \
    -Itools/include/uapi -c "$sel/progs/xsk_xdp_progs.c" -o "$lib/xsk_xdp_progs.bpf.o" \
    >>"$log" 2>&1 || fail "clang (progs/xsk_xdp_progs.c)"
  bpftool gen skeleton "$lib/xsk_xdp_progs.bpf.o" name xsk_xdp_progs \
    >"$lib/xsk_xdp_progs.skel.h" 2>>"$log" || fail "bpftool gen skeleton"
  srcs+=("$sel/network_helpers.c" tools/lib/find_bit.c)
fi
libs=(-L"$libdir" -lbpf -lelf -lz -lpthread)
if [[ -n $instrument ]]; then
  # The Rust static library needs these besides libc (rustc's native-static-libs,
  # with the static unwinder instead of libgcc_s).
  cflags+=(-I"$recinc")
  libs=("$reclib" "${libs[@]}" -lgcc_eh -lutil -lrt -lm -ldl)
fi
echo "build-xskxceiver: compiling xskxceiver$variant" >&2
gcc "${cflags[@]}" "${srcs[@]}" -o "$out.tmp" "${libs[@]}" \
  >>"$log" 2>&1 || fail "gcc"
mv "$out.tmp" "$out"
cd /
rm -rf "$work"
echo "$out"
