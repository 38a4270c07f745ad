#!/usr/bin/env bash
# Installs the recorder's C API: libxskdbg_recorder.so (with its SONAME link)
# and libxskdbg_recorder.a, include/xskdbg.h, and the pkg-config file
# xskdbg-recorder.pc. Debug info is stripped (the static library is mostly
# Rust's standard library: about 27 MB with it, a few MB without).
#
#   recorder/install.sh                       build (release) and install into /usr/local
#   recorder/install.sh --prefix ~/.local     elsewhere
#   recorder/install.sh --from DIR            install DIR/libxskdbg_recorder.{a,so}, no build
#   DESTDIR=/tmp/stage recorder/install.sh    stage for a package
#
# Then:  gcc app.c $(pkg-config --cflags --libs xskdbg-recorder)           (shared)
#        gcc app.c $(pkg-config --cflags xskdbg-recorder) \
#            "$(pkg-config --variable=libdir xskdbg-recorder)/libxskdbg_recorder.a" \
#            $(pkg-config --static --libs-only-l xskdbg-recorder | sed 's/-lxskdbg_recorder//')   (static)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=/usr/local
libdir=
includedir=
from=

usage() { echo "usage: recorder/install.sh [--prefix DIR] [--libdir DIR] [--includedir DIR] [--from DIR]" >&2; exit 2; }
while (($#)); do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --libdir) libdir=${2:?--libdir needs a directory}; shift 2 ;;
    --includedir) includedir=${2:?--includedir needs a directory}; shift 2 ;;
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
prefix=$(realpath -m "$prefix")
libdir=${libdir:-$prefix/lib}
includedir=${includedir:-$prefix/include}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml" | head -1)
soname=libxskdbg_recorder.so.1
# What the static library needs besides libc: rustc's native-static-libs for
# this target (`rustc --print native-static-libs`).
native_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

if [[ -z $from ]]; then
  command -v cargo >/dev/null || { echo "install.sh: cargo not found: install Rust with rustup, or pass --from DIR" >&2; exit 2; }
  (cd "$here/.." && cargo build --release -p xskdbg-recorder)
  from=$(cd "$here/.." && cargo metadata --format-version 1 --no-deps \
           | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
fi
for f in libxskdbg_recorder.a libxskdbg_recorder.so; do
  [[ -f $from/$f ]] || { echo "install.sh: $from/$f not found (build with: cargo build --release -p xskdbg-recorder)" >&2; exit 2; }
done

dest_lib=${DESTDIR:-}$libdir
dest_inc=${DESTDIR:-}$includedir
install -d "$dest_lib/pkgconfig" "$dest_inc"
install -m 0644 "$from/libxskdbg_recorder.a" "$dest_lib/libxskdbg_recorder.a"
install -m 0755 "$from/libxskdbg_recorder.so" "$dest_lib/libxskdbg_recorder.so.$version"
if command -v strip >/dev/null; then
  strip --strip-debug "$dest_lib/libxskdbg_recorder.a" "$dest_lib/libxskdbg_recorder.so.$version"
fi
ln -sf "libxskdbg_recorder.so.$version" "$dest_lib/$soname"
ln -sf "$soname" "$dest_lib/libxskdbg_recorder.so"
install -m 0644 "$here/include/xskdbg.h" "$dest_inc/xskdbg.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$includedir|" \
    -e "s|@VERSION@|$version|" -e "s|@NATIVE_LIBS@|$native_libs|" \
    "$here/xskdbg-recorder.pc.in" > "$dest_lib/pkgconfig/xskdbg-recorder.pc"

echo "installed: $dest_lib/libxskdbg_recorder.{a,so}, $dest_inc/xskdbg.h, $dest_lib/pkgconfig/xskdbg-recorder.pc" >&2
if [[ -z ${DESTDIR:-} ]]; then
  case ":${PKG_CONFIG_PATH:-}:$(pkg-config --variable pc_path pkg-config 2>/dev/null):" in
    *":$libdir/pkgconfig:"*) ;;
    *) echo "install.sh: add $libdir/pkgconfig to PKG_CONFIG_PATH for pkg-config to find it" >&2 ;;
  esac
  case "$libdir" in
    /usr/lib|/usr/local/lib)
      if [[ $(id -u) -eq 0 ]] && command -v ldconfig >/dev/null; then ldconfig; fi ;;
    *) echo "install.sh: $libdir is not on the loader's path: run programs with LD_LIBRARY_PATH=$libdir or link with -Wl,-rpath,$libdir" >&2 ;;
  esac
fi
