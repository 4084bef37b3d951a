#!/usr/bin/env bash
# Removes what scripts/install.sh installed: the binary, ONNX Runtime, the
# models, the unit, sysusers.d/tmpfiles.d entries and the docs. It stops and
# disables the service first.
#
# It KEEPS the data and the configuration: /var/lib/srdgd (gallery, spool,
# hits, TensorRT cache), /etc/srdgd (config, gallery key, srdgd.env) and the
# srdgd user, so that a reinstall carries on where it stopped. Delete those by
# hand to remove everything (the gallery cannot be read without its key).
#
# Environment: PREFIX, DESTDIR and UNITDIR as for install.sh.
set -euo pipefail

PREFIX="${PREFIX:-/usr}"
PREFIX="${PREFIX%/}"
DESTDIR="${DESTDIR:-}"
DESTDIR="${DESTDIR%/}"
if [ -z "${UNITDIR:-}" ]; then
  if [ "$PREFIX" = /usr ]; then UNITDIR=/lib/systemd/system; else UNITDIR=/etc/systemd/system; fi
fi
D="$DESTDIR"
say() { printf 'uninstall: %s\n' "$*"; }

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
  printf 'uninstall: run as root (or set DESTDIR)\n' >&2
  exit 1
fi

running=""
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  running=1
  systemctl disable --now srdgd.service 2>/dev/null || true
fi

rm -f "$D$PREFIX/bin/srdgd" \
  "$D$UNITDIR/srdgd.service" \
  "$D$PREFIX/lib/sysusers.d/srdgd.conf" \
  "$D$PREFIX/lib/tmpfiles.d/srdgd.conf" \
  "$D$PREFIX/share/man/man1/srdgd.1.gz"
rm -rf "$D$PREFIX/lib/srdgd" "$D$PREFIX/share/srdgd/models" "$D$PREFIX/share/doc/srdgd"
rmdir "$D$PREFIX/share/srdgd" 2>/dev/null || true

if [ -n "$running" ]; then
  systemctl daemon-reload
fi
say "removed the binary, unit, models and ONNX Runtime"
say "kept /var/lib/srdgd (data), /etc/srdgd (config and gallery key) and the srdgd user"
