#!/usr/bin/env bash
# Builds the arm64 sysroot the cross build links against and qemu-user runs
# in: build/sysroot-arm64 (override: SYSROOT).
#
# Debian's arm64 -dev packages are not all co-installable with the amd64 ones
# (libopencv-dev is not Multi-Arch: same), so nothing is installed on the
# host: a private apt state (build/apt-arm64: its own sources, lists and
# archive cache, an empty dpkg status) downloads
#   - the runtime libraries with their whole dependency closure (libc6 up), and
#   - the -dev packages with the headers, without their dependencies,
# and `dpkg-deb -x` unpacks them. Files that maintainer scripts would make
# (the merged /usr links, update-alternatives links for BLAS/LAPACK) are made
# here. For each package, its file list and its shlibs/symbols control files
# go to $SYSROOT/.dpkg/ (scripts/deb-depends.sh reads them for Depends:).
#
# Idempotent: the .debs stay in build/apt-arm64 and a stamp names the package
# set, so a rerun with nothing changed returns at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../packaging/deb/libs.sh
source "$root/packaging/deb/libs.sh"
ARCH="${1:-arm64}"
triplet="$(deb_arch_triplet "$ARCH")"
sysroot="${SYSROOT:-$root/build/sysroot-$ARCH}"
state="$root/build/apt-$ARCH"
say() { printf 'sysroot: %s\n' "$*"; }

runtime=(libc6 libstdc++6 libgcc-s1 "${FFMPEG_RUNTIME[@]}")
for m in "${OPENCV_LINK_MODULES[@]}"; do runtime+=("libopencv-$m$OPENCV_SOVERSION"); done
dev=("${FFMPEG_DEV[@]}")
for m in "${OPENCV_HEADER_MODULES[@]}"; do dev+=("libopencv-$m-dev"); done

want="$ARCH $DEBIAN_MIRROR $DEBIAN_SECURITY_MIRROR ${runtime[*]} | ${dev[*]}"
if [ -f "$sysroot/.stamp" ] && [ "$(cat "$sysroot/.stamp")" = "$want" ] && [ -L "$sysroot/lib" ]; then
  say "$sysroot is up to date"
  exit 0
fi

mkdir -p "$state"/{etc/apt/apt.conf.d,etc/apt/preferences.d,etc/apt/sources.list.d,var/lib/apt/lists/partial,var/cache/apt/archives/partial,var/lib/dpkg,dev}
: >"$state/var/lib/dpkg/status"
key=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$state/etc/apt/sources.list" <<EOF
deb [arch=$ARCH signed-by=$key] $DEBIAN_MIRROR $DEBIAN_SUITE main
deb [arch=$ARCH signed-by=$key] $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb [arch=$ARCH signed-by=$key] $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main
EOF
apt=(apt-get -q -o "Dir=$state" -o "Dir::State::status=$state/var/lib/dpkg/status"
  -o "APT::Architecture=$ARCH" -o "APT::Architectures::=$ARCH" -o Debug::NoLocking=1
  -o APT::Install-Recommends=false -o APT::Sandbox::User=root)

started=$(date +%s)
say "apt update ($DEBIAN_MIRROR, $DEBIAN_SUITE, $ARCH)"
"${apt[@]}" update >"$state/update.log" 2>&1 || { cat "$state/update.log" >&2; exit 1; }
say "downloading ${#runtime[@]} runtime libraries with their dependencies"
"${apt[@]}" install -y --download-only "${runtime[@]}" >"$state/install.log" 2>&1 ||
  { cat "$state/install.log" >&2; exit 1; }
say "downloading ${#dev[@]} -dev packages (headers, no dependencies)"
mkdir -p "$state/dev"
(cd "$state/dev" && "${apt[@]}" download "${dev[@]}" >"$state/download.log" 2>&1) ||
  { cat "$state/download.log" >&2; exit 1; }
# one version per package: the archive cache keeps older ones after a point release
debs=()
while IFS= read -r f; do debs+=("$f"); done < <(
  for f in "$state"/var/cache/apt/archives/*.deb "$state"/dev/*.deb; do
    printf '%s %s\n' "$(dpkg-deb -f "$f" Package)" "$f"
  done | sort -k1,1 -V -k2,2 | awk '{last[$1]=$2} END {for (p in last) print last[p]}' | sort)
bytes=$(du -cb "${debs[@]}" | tail -1 | cut -f1)
say "${#debs[@]} packages, $((bytes / 1000000)) MB, fetched in $(($(date +%s) - started))s"

rm -rf "$sysroot"
mkdir -p "$sysroot/.dpkg" "$sysroot/usr/lib" "$sysroot/usr/bin" "$sysroot/usr/sbin"
# Debian 12 is merged-/usr: /lib is a link to usr/lib (the packages still
# ship some files under /lib, e.g. the dynamic loader)
for d in lib bin sbin; do ln -s "usr/$d" "$sysroot/$d"; done
for f in "${debs[@]}"; do
  p="$(dpkg-deb -f "$f" Package)"
  # --keep-directory-symlink: unpack ./lib/... through the merged-/usr link
  dpkg-deb --fsys-tarfile "$f" | tar -x --keep-directory-symlink -C "$sysroot"
  dpkg-deb -c "$f" | awk '{print $6}' | sed 's#^\./#/#' >"$sysroot/.dpkg/$p.list"
  dpkg-deb -f "$f" Version >"$sysroot/.dpkg/$p.version"
  tmp="$(mktemp -d)"
  dpkg-deb -e "$f" "$tmp"
  for c in shlibs symbols; do [ -f "$tmp/$c" ] && cp "$tmp/$c" "$sysroot/.dpkg/$p.$c"; done
  rm -rf "$tmp"
done

# update-alternatives links the postinst scripts would make (libblas.so.3,
# liblapack.so.3 live in blas/ and lapack/ subfolders)
lib="$sysroot/usr/lib/$triplet"
for sub in blas lapack; do
  for f in "$lib/$sub"/lib*.so*; do
    [ -e "$f" ] || continue
    n="$(basename "$f")"
    [ -e "$lib/$n" ] || ln -sfn "$sub/$n" "$lib/$n"
  done
done

# the closure of what the linked libraries need must be here (the cross link
# resolves it, qemu runs against it)
libdirs=()
while IFS= read -r d; do libdirs+=("$d"); done < <(deb_sysroot_libdirs "$sysroot" "$triplet")
objdump="$triplet-objdump"
command -v "$objdump" >/dev/null || objdump=objdump
find_lib() { local d; for d in "${libdirs[@]}"; do [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }; done; return 1; }
declare -A seen=()
queue=()
for m in "${OPENCV_LINK_MODULES[@]}"; do queue+=("libopencv_$m.so.$OPENCV_SOVERSION"); done
for so in "$lib"/libavcodec.so.* "$lib"/libavutil.so.* "$lib"/libswscale.so.*; do queue+=("$(basename "$so")"); done
missing=()
while [ "${#queue[@]}" -gt 0 ]; do
  n="${queue[0]}"; queue=("${queue[@]:1}")
  [ -n "${seen[$n]:-}" ] && continue
  seen[$n]=1
  if ! f="$(find_lib "$n")"; then missing+=("$n"); continue; fi
  for dep in $("$objdump" -p "$f" | awk '$1 == "NEEDED" {print $2}'); do
    [ -n "${seen[$dep]:-}" ] || queue+=("$dep")
  done
done
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'sysroot: missing %s\n' "${missing[@]}" >&2
  exit 1
fi
say "${#seen[@]} libraries in the closure, all present in ${libdirs[*]#$sysroot}"
say "$sysroot: $(du -sh "$sysroot" | cut -f1) unpacked, in $(($(date +%s) - started))s"
echo "$want" >"$sysroot/.stamp"
