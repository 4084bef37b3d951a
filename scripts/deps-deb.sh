#!/usr/bin/env bash
# The Debian packages `make deb` and `make test-deb` need on top of
# scripts/deps.sh: the aarch64 cross compiler, qemu-user, debootstrap,
# lintian. It does not add a foreign dpkg architecture: the arm64 libraries
# come into a private sysroot (scripts/deb-sysroot.sh), so the host's amd64
# -dev packages stay as they are. Idempotent.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
APT_PACKAGES=(
  gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu
  qemu-user-static debootstrap lintian dpkg-dev xz-utils debian-archive-keyring
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps-deb: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "deps-deb: ok"
