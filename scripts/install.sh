#!/usr/bin/env bash
# Installs srdgd as a systemd service:
#
#   $PREFIX/bin/srdgd                          the binary (bin/srdgd, built if missing)
#   $PREFIX/lib/srdgd/libonnxruntime.so.1      ONNX Runtime (third_party/onnxruntime/lib)
#   $PREFIX/share/srdgd/models/*.onnx          the model set (models/dist, and its demo/ faces)
#   /lib/systemd/system/srdgd.service          the unit (/etc/systemd/system unless PREFIX=/usr)
#   $PREFIX/lib/sysusers.d/srdgd.conf          the srdgd system user
#   $PREFIX/lib/tmpfiles.d/srdgd.conf          /etc/srdgd as root:srdgd 0750
#   $PREFIX/share/man/man1/srdgd.1.gz          the manual page (packaging/srdgd.1)
#   /etc/srdgd/srdgd.yaml                      the example config, only if absent (0640 root:srdgd)
#   /etc/srdgd/gallery.key                     a new gallery key, only if absent (0600 srdgd)
#
# then creates the user and runs `systemctl daemon-reload`. It does not enable
# or start the service: edit /etc/srdgd/srdgd.yaml, run `srdgd hwtest`, then
# `systemctl enable --now srdgd`.
#
# Environment:
#   PREFIX     default /usr
#   DESTDIR    stage into this root instead (packaging, tests): no user is
#              created, nothing is chowned, systemctl is not run, and no gallery
#              key is made (every box needs its own) unless KEYGEN=1
#   INSTALL_BIN  install this binary instead of bin/srdgd
#   BUILD=1    rebuild bin/srdgd first (`make build`)
#   UNITDIR    override the unit folder
#   ORT_LIB_DIR  take ONNX Runtime from here (default third_party/onnxruntime/lib;
#              the arm64 package: build/onnxruntime-arm64/lib)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${PREFIX:-/usr}"
PREFIX="${PREFIX%/}"
DESTDIR="${DESTDIR:-}"
DESTDIR="${DESTDIR%/}"
KEYGEN="${KEYGEN:-}"
if [ -z "${UNITDIR:-}" ]; then
  if [ "$PREFIX" = /usr ]; then UNITDIR=/lib/systemd/system; else UNITDIR=/etc/systemd/system; fi
fi
D="$DESTDIR"
staged() { [ -n "$DESTDIR" ]; }
say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

if ! staged && [ "$(id -u)" != 0 ]; then
  die "run as root (or set DESTDIR to stage into a folder)"
fi

# ---- the binary -----------------------------------------------------------
bin="${INSTALL_BIN:-$root/bin/srdgd}"
if [ -z "${INSTALL_BIN:-}" ] && { [ "${BUILD:-}" = 1 ] || [ ! -x "$bin" ]; }; then
  say "building $bin"
  make -C "$root" build >/dev/null
fi
[ -x "$bin" ] || die "no executable at $bin (run make build, or set INSTALL_BIN)"

install -d -m 0755 "$D$PREFIX/bin"
install -m 0755 "$bin" "$D$PREFIX/bin/srdgd"
say "binary -> $PREFIX/bin/srdgd ($("$bin" version 2>/dev/null || echo 'version unknown'))"

# ---- ONNX Runtime -----------------------------------------------------------
ortsrc="${ORT_LIB_DIR:-$root/third_party/onnxruntime/lib}"
ortdst="$D$PREFIX/lib/srdgd"
[ -f "$ortsrc/libonnxruntime.so.1" ] || die "no $ortsrc/libonnxruntime.so.1 (run scripts/fetch-ort.sh)"
install -d -m 0755 "$ortdst"
for f in "$ortsrc"/libonnxruntime*.so*; do
  n="$(basename "$f")"
  if [ -L "$f" ]; then
    ln -sfn "$(readlink "$f")" "$ortdst/$n"
  else
    install -m 0644 "$f" "$ortdst/$n"
  fi
done
[ -f "$ortsrc/VERSION" ] && install -m 0644 "$ortsrc/VERSION" "$ortdst/ONNXRUNTIME_VERSION"
say "onnxruntime -> $PREFIX/lib/srdgd/"

# ---- models -----------------------------------------------------------------
mdst="$D$PREFIX/share/srdgd/models"
install -d -m 0755 "$mdst"
n=0
for f in "$root"/models/dist/*.onnx; do
  [ -f "$f" ] || continue
  install -m 0644 "$f" "$mdst/"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || die "no models in $root/models/dist (run make models)"
# the demo faces (`srdgd demo`), with their licence
if [ -d "$root/models/dist/demo" ]; then
  install -d -m 0755 "$mdst/demo"
  for f in "$root"/models/dist/demo/*; do
    [ -f "$f" ] && install -m 0644 "$f" "$mdst/demo/"
  done
fi
[ -f "$root/models/dist/guidance.onnx" ] || say "WARNING: no guidance.onnx in models/dist (check out the repository again): set srdg.attributes.policy: off or guidance fails"
say "$n models -> $PREFIX/share/srdgd/models/"

# ---- unit, sysusers, tmpfiles, docs -----------------------------------------
install -d -m 0755 "$D$UNITDIR" "$D$PREFIX/lib/sysusers.d" "$D$PREFIX/lib/tmpfiles.d" "$D$PREFIX/share/doc/srdgd"
sed "s#^ExecStart=/usr/bin/srdgd #ExecStart=$PREFIX/bin/srdgd #" "$root/systemd/srdgd.service" >"$D$UNITDIR/srdgd.service"
chmod 0644 "$D$UNITDIR/srdgd.service"
install -m 0644 "$root/systemd/srdgd.sysusers.conf" "$D$PREFIX/lib/sysusers.d/srdgd.conf"
install -m 0644 "$root/systemd/srdgd.tmpfiles.conf" "$D$PREFIX/lib/tmpfiles.d/srdgd.conf"
install -m 0644 "$root/README.md" "$D$PREFIX/share/doc/srdgd/README.md"
install -d -m 0755 "$D$PREFIX/share/man/man1"
gzip -9n <"$root/packaging/srdgd.1" >"$D$PREFIX/share/man/man1/srdgd.1.gz"
chmod 0644 "$D$PREFIX/share/man/man1/srdgd.1.gz"
say "unit -> $UNITDIR/srdgd.service"

# ---- /etc/srdgd: config ------------------------------------------------------
etc="$D/etc/srdgd"
install -d -m 0750 "$etc"
if [ -e "$etc/srdgd.yaml" ]; then
  say "kept the existing /etc/srdgd/srdgd.yaml"
else
  # storage.models_dir and srdg.ort_library stay "": the binary finds
  # $PREFIX/share/srdgd/models and $PREFIX/lib/srdgd beside itself, whatever
  # the prefix (README "Where srdgd finds its files")
  install -m 0640 "$root/config/srdgd.example.yaml" "$etc/srdgd.yaml"
  say "config -> /etc/srdgd/srdgd.yaml (from config/srdgd.example.yaml: edit the cameras)"
fi

# ---- user, ownership, gallery key, state, systemd ------------------------------
# shared with the .deb's postinst, which runs it as /usr/lib/srdgd/setup-host
DESTDIR="$DESTDIR" PREFIX="$PREFIX" KEYGEN="$KEYGEN" SRDGD_BIN="$bin" SETUP_SAY=install \
  "$root/scripts/setup-host.sh"
say "done"
