#!/usr/bin/env bash
# Download Debian's 6.1 cloud kernel package (newest linux-image-6.1.0-NN-cloud-amd64-unsigned
# apt offers, or debian:NN) once into the cache outside the repo ($XSKDBG_CACHE_DIR, else
# $XDG_CACHE_HOME/xskdbg, else /var/cache/xskdbg for root), unpack it with dpkg-deb and
# index its modules with depmod. Prints the bzImage, release and modules directory.
# Needs: apt (after apt-get update), dpkg, kmod. Usage: fetch-debian-kernel.sh [debian|debian:NN]
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
exec "$here/xskdbg-vm.sh" kernel --kernel "${1:-debian}"
