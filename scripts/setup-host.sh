#!/usr/bin/env bash
# The host side of an install, after the files are in place: the srdgd user,
# ownership of /etc/srdgd and its config, a gallery key if there is none,
# /var/lib/srdgd, the tmpfiles entry and `systemctl daemon-reload`.
# scripts/install.sh runs it from the checkout; the .deb ships it as
# /usr/lib/srdgd/setup-host and its postinst runs it on every configure.
# Idempotent: an existing user, config or key is kept.
#
# Environment:
#   PREFIX     where the files went (default /usr)
#   DESTDIR    a staged root: no user, no chown, no systemctl; a key only with KEYGEN=1
#   SRDGD_BIN  the srdgd binary that makes the key (default $PREFIX/bin/srdgd)
#   SETUP_SAY  the prefix of its messages (default setup)
set -euo pipefail

PREFIX="${PREFIX:-/usr}"
PREFIX="${PREFIX%/}"
DESTDIR="${DESTDIR:-}"
DESTDIR="${DESTDIR%/}"
KEYGEN="${KEYGEN:-}"
bin="${SRDGD_BIN:-$PREFIX/bin/srdgd}"
D="$DESTDIR"
staged() { [ -n "$DESTDIR" ]; }
say() { printf '%s: %s\n' "${SETUP_SAY:-setup}" "$*"; }

# ---- user ---------------------------------------------------------------------
if staged; then
  say "DESTDIR set: not creating the srdgd user (sysusers.d does it on the target)"
elif command -v systemd-sysusers >/dev/null 2>&1; then
  systemd-sysusers "$PREFIX/lib/sysusers.d/srdgd.conf"
else
  getent group video >/dev/null || groupadd --system video
  getent group render >/dev/null || groupadd --system render
  id srdgd >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/srdgd --no-create-home \
    --shell /usr/sbin/nologin --comment "srdgd daemon" srdgd
  usermod -a -G video,render srdgd
fi

# ---- /etc/srdgd: ownership and key ------------------------------------------------
etc="$D/etc/srdgd"
install -d -m 0750 "$etc"
if ! staged; then
  chown root:srdgd "$etc"
  if [ -e "$etc/srdgd.yaml" ]; then chown root:srdgd "$etc/srdgd.yaml"; fi
fi

key="$etc/gallery.key"
if [ -e "$key" ]; then
  say "kept the existing /etc/srdgd/gallery.key"
elif staged && [ "$KEYGEN" != 1 ]; then
  say "DESTDIR set: no gallery key made (on the box: srdgd gallery keygen)"
else
  # a throwaway config that only names the key file, so keygen works before
  # srdgd.yaml is edited (its example camera needs a password variable); a
  # clean environment, as any SRDGD_* variable is read as a config override
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  printf 'version: 1\nmatch:\n  key_file: %s\n' "$key" >"$tmp/keygen.yaml"
  env -i PATH="$PATH" "$bin" gallery --config "$tmp/keygen.yaml" keygen >/dev/null
  staged || chown srdgd:srdgd "$key"
  say "gallery key -> /etc/srdgd/gallery.key (back it up: without it the gallery cannot be read)"
fi

# ---- state, tmpfiles, systemd -------------------------------------------------
if staged; then
  say "DESTDIR set: not running systemctl daemon-reload"
else
  if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create "$PREFIX/lib/tmpfiles.d/srdgd.conf"
  fi
  install -d -m 0750 -o srdgd -g srdgd /var/lib/srdgd
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    say "systemd reloaded; next: edit /etc/srdgd/srdgd.yaml, run srdgd hwtest --config /etc/srdgd/srdgd.yaml, then systemctl enable --now srdgd"
  else
    say "systemd is not running here (container?): skipped systemctl daemon-reload"
  fi
fi
