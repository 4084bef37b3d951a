#!/usr/bin/env bash
# `make test-deb`: tests the packages `make deb` put in dist/ (run as root).
#
#  lintian on both packages (errors and warnings fail).
#  amd64, in a clean Debian 12 root (debootstrap --variant=minbase, from the
#  mirror this machine's apt uses; cached as build/deb-test/debian12-minbase.tar):
#    apt-get install ./srdgd_*_amd64.deb (Depends from the mirror), then
#    srdgd version; the user, groups and modes; srdgd config check of
#    /etc/srdgd/srdgd.yaml as the srdgd user; srdgd hwtest --json (cameras and
#    broker of the example config are unreachable here: what must pass is ONNX
#    Runtime, the CPU provider, every model and the SR run); systemd-analyze
#    verify of the installed unit; a reinstall and an upgrade keep a changed
#    config, the gallery key and the state; remove keeps them; purge deletes them.
#  arm64, under qemu-user (qemu-aarch64-static -L build/sysroot-arm64):
#    srdgd version, srdgd config check, and srdgd sr of a test face with the
#    package's arm64 ONNX Runtime, compared with the amd64 package's output for
#    the same seed: max abs difference at most SR_TOLERANCE (8-bit levels).
#    The run is the ode sampler with 3 steps (5 score + 5 guidance
#    evaluations, about 1.5 min under qemu; the default fast sampler's 64
#    evaluations take over 11 min there).
#
# Environment: SR_TOLERANCE (default 2; measured: 0 with QEMU_CPU=cortex-a72,
# 1 level in 1 of 49152 values with qemu's default "max" CPU, whose SVE
# kernels ONNX Runtime then uses), QEMU_CPU (default cortex-a72: NEON only,
# as on a Jetson), KEEP=1 keeps build/deb-test/root, PY (/usr/bin/python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../packaging/deb/libs.sh
source "$root/packaging/deb/libs.sh"
T="$root/build/deb-test"
R="$T/root"
SR_TOLERANCE="${SR_TOLERANCE:-2}"
PY="${PY:-/usr/bin/python3}"
export QEMU_CPU="${QEMU_CPU:-cortex-a72}"
started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, chroot, mount)"
cd "$root"

debs() { ls "$root"/dist/srdgd_*_"$1".deb 2>/dev/null | tail -1 || true; }
amd="$(debs amd64)"
arm="$(debs arm64)"
[ -n "$amd" ] && [ -n "$arm" ] || fail "no packages in dist/ (make deb)"
version="$(dpkg-deb -f "$amd" Version)"
[ "$(dpkg-deb -f "$arm" Version)" = "$version" ] || fail "dist/ holds packages of two versions"
mkdir -p "$T"

step "lintian (errors and warnings fail; each overridden tag has its reason in packaging/deb/lintian-overrides)"
lintian --fail-on error,warning --tag-display-limit 0 "$amd" "$arm" || fail "lintian"
ok "lintian: $(basename "$amd") $(basename "$arm")"

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
  mounted=()
  # never delete through a mount that is still there (/dev of the host)
  if grep -q " $R/" /proc/mounts; then
    echo "deb-test: mounts left under $R, not deleting it" >&2
  elif [ "${KEEP:-}" != 1 ]; then
    rm -rf --one-file-system "$R"
  fi
  if [ -n "${arm_files:-}" ] && [ -f "$arm_files" ]; then
    (cd "$sysroot" && xargs -d '\n' rm -f <"$arm_files") || true
  fi
}
trap cleanup EXIT

# ---- a clean Debian 12 root ---------------------------------------------------
step "debian 12 root ($DEBIAN_MIRROR)"
base="$T/debian12-minbase.tar"
if [ ! -f "$base" ]; then
  rm -rf "$T/bootstrap"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$T/bootstrap" "$DEBIAN_MIRROR" >"$T/debootstrap.log" 2>&1 ||
    { tail -20 "$T/debootstrap.log" >&2; fail "debootstrap"; }
  rm -rf "$T/bootstrap/var/cache/apt/archives/"*.deb
  tar -C "$T/bootstrap" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$T/bootstrap"
  ok "debootstrap --variant=minbase $DEBIAN_SUITE -> $base ($(du -h "$base" | cut -f1))"
else
  ok "cached $base"
fi
grep -q " $R/" /proc/mounts && fail "mounts left under $R from an earlier run"
rm -rf --one-file-system "$R"
mkdir -p "$R"
tar -C "$R" -xf "$base"
cat >"$R/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main
EOF
cp /etc/resolv.conf "$R/etc/resolv.conf"
mount -t proc proc "$R/proc" && mounted+=("$R/proc")
mount --bind /dev "$R/dev" && mounted+=("$R/dev")
# the downloaded Depends are kept between runs
mkdir -p "$T/apt-archives/partial"
mount --bind "$T/apt-archives" "$R/var/cache/apt/archives" && mounted+=("$R/var/cache/apt/archives")
cp "$amd" "$R/tmp/"
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
apt_root() { in_root apt-get -q -y -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0 "$@"; }
as_srdgd() {
  local uid gid
  uid="$(awk -F: '$1 == "srdgd" {print $3}' "$R/etc/passwd")"
  gid="$(awk -F: '$1 == "srdgd" {print $4}' "$R/etc/passwd")"
  chroot --userspec="$uid:$gid" --groups="$gid" "$R" env -i PATH=/usr/bin:/bin HOME=/var/lib/srdgd LANG=C.UTF-8 "$@"
}
# names as the root's own passwd/group files give them
statf() { in_root stat -c '%U:%G %a' "$1"; }
sum() { sha256sum "$R$1" | cut -d' ' -f1; }

# ---- install --------------------------------------------------------------------
step "apt-get install ./$(basename "$amd")"
apt_root update >"$T/apt-update.log" 2>&1 || { cat "$T/apt-update.log" >&2; fail "apt-get update in the root"; }
apt_root install "./tmp/$(basename "$amd")" >"$T/apt-install.log" 2>&1 ||
  { tail -30 "$T/apt-install.log" >&2; fail "apt-get install"; }
grep -E '^(The following NEW|Need to get|After this|Setting up srdgd|srdgd: )' "$T/apt-install.log" || true
printf 'packages installed with it: %s\n' "$(grep -c '^Setting up' "$T/apt-install.log")"
[ "$(in_root dpkg-query -W -f='${Status} ${Version}' srdgd)" = "install ok installed $version" ] || fail "dpkg status"
ok "installed $version"

step "srdgd version"
v="$(in_root srdgd version)"
echo "$v"
[[ "$v" == "srdgd "*" linux/amd64" ]] || fail "srdgd version: $v"

step "user, groups, modes"
in_root id srdgd
in_root id -nG srdgd | tr ' ' '\n' | grep -qx video || fail "srdgd not in video"
in_root id -nG srdgd | tr ' ' '\n' | grep -qx render || fail "srdgd not in render"
for f in "/etc/srdgd root:srdgd 750" "/etc/srdgd/srdgd.yaml root:srdgd 640" "/etc/srdgd/gallery.key srdgd:srdgd 600" \
  "/var/lib/srdgd srdgd:srdgd 750" "/usr/bin/srdgd root:root 755" "/usr/lib/srdgd/libonnxruntime.so.1 root:root 644"; do
  set -- $f
  [ "$(statf "$1")" = "$2 $3" ] || fail "$1 is $(statf "$1"), want $2 $3"
  printf '%-40s %s\n' "$1" "$2 $3"
done
grep -qxE '[0-9a-f]{64}' "$R/etc/srdgd/gallery.key" || fail "gallery key is not 64 hex digits"
ok "postinst made the user and a gallery key"

step "srdgd config check /etc/srdgd/srdgd.yaml (as srdgd)"
set +e
out="$(as_srdgd srdgd config check /etc/srdgd/srdgd.yaml 2>&1)"
rc=$?
set -e
echo "$out"
# the example's camera password comes from the environment (srdgd.env)
[ "$rc" = 3 ] && grep -q CAM_FRONT_DOOR_PASSWORD <<<"$out" || fail "without the password variable: exit $rc"
as_srdgd env CAM_FRONT_DOOR_PASSWORD=test srdgd config check /etc/srdgd/srdgd.yaml
ok "exit 3 naming the missing variable; exit 0 with CAM_FRONT_DOOR_PASSWORD set"

step "srdgd hwtest --json (as srdgd)"
set +e
as_srdgd env CAM_FRONT_DOOR_PASSWORD=test timeout 600 srdgd hwtest --json --config /etc/srdgd/srdgd.yaml >"$T/hwtest.json" 2>"$T/hwtest.log"
rc=$?
set -e
echo "exit $rc (1: the example's camera and broker do not exist here)"
"$PY" - "$T/hwtest.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bad = []
for c in r["checks"]:
    print(f'{c["status"]:5} {c["name"]:24} {c["message"][:90]}')
    n, s = c["name"], c["status"]
    if n in ("onnxruntime", "provider/cpu") or n.startswith("model/"):
        if s != "ok": bad.append(n)
    if n == "srdg" and s not in ("ok", "warn"): bad.append(n)
names = {c["name"] for c in r["checks"]}
for n in ("onnxruntime", "provider/cpu", "srdg"):
    if n not in names: bad.append(n + " missing")
if not any(n.startswith("model/") for n in names): bad.append("no model checks")
if bad: sys.exit("FAIL: " + ", ".join(bad))
print("ok: onnxruntime, provider/cpu, every model and the SR run pass")
EOF

step "systemd-analyze verify /lib/systemd/system/srdgd.service"
if [ -x "$R/usr/bin/systemd-analyze" ]; then
  in_root systemd-analyze verify /lib/systemd/system/srdgd.service
  ok "verify: no complaints (systemd came in as a Recommends)"
else
  systemd-analyze verify --root="$R" "$R/lib/systemd/system/srdgd.service"
  ok "verify (host systemd-analyze --root)"
fi

# ---- reinstall and upgrade keep config, key and state -----------------------------
step "reinstall and upgrade keep a changed config, the key and the state"
printf '# changed by the operator (deb-test)\n' >>"$R/etc/srdgd/srdgd.yaml"
as_srdgd sh -c 'echo state >/var/lib/srdgd/deb-test.state'
conf="$(sum /etc/srdgd/srdgd.yaml)"
key="$(sum /etc/srdgd/gallery.key)"
check_kept() {
  [ "$(sum /etc/srdgd/srdgd.yaml)" = "$conf" ] || fail "$1 changed the config"
  [ "$(sum /etc/srdgd/gallery.key)" = "$key" ] || fail "$1 replaced the gallery key"
  [ -f "$R/var/lib/srdgd/deb-test.state" ] || fail "$1 lost /var/lib/srdgd"
  [ "$(statf /etc/srdgd/srdgd.yaml)" = "root:srdgd 640" ] || fail "$1: config is $(statf /etc/srdgd/srdgd.yaml)"
  ok "$1 kept the changed config ($conf), the key and /var/lib/srdgd"
}
apt_root install --reinstall "./tmp/$(basename "$amd")" >"$T/apt-reinstall.log" 2>&1 ||
  { tail -20 "$T/apt-reinstall.log" >&2; fail "reinstall"; }
grep -E '^(Preparing|Unpacking|Setting up srdgd|srdgd: )' "$T/apt-reinstall.log" || true
check_kept "reinstall of $version"
# a newer version of the same package (repacked with a higher Version:)
up="$T/upgrade"
rm -rf "$up"
mkdir -p "$up"
dpkg-deb -R "$amd" "$up/root"
sed -i "s/^Version: .*/Version: $version+test1/" "$up/root/DEBIAN/control"
dpkg-deb --root-owner-group -Zgzip -z1 --build "$up/root" "$R/tmp/srdgd_${version}+test1_amd64.deb" >/dev/null
rm -rf "$up"
apt_root install "./tmp/srdgd_${version}+test1_amd64.deb" >"$T/apt-upgrade.log" 2>&1 ||
  { tail -20 "$T/apt-upgrade.log" >&2; fail "upgrade"; }
grep -E '^(Preparing|Unpacking|Setting up srdgd|srdgd: )' "$T/apt-upgrade.log" || true
[ "$(in_root dpkg-query -W -f='${Version}' srdgd)" = "$version+test1" ] || fail "upgrade did not take"
check_kept "upgrade $version -> $version+test1"

# ---- remove keeps, purge deletes ---------------------------------------------------
step "apt-get remove srdgd"
apt_root remove srdgd >"$T/apt-remove.log" 2>&1 || { tail -20 "$T/apt-remove.log" >&2; fail "remove"; }
grep -E '^Removing srdgd' "$T/apt-remove.log" || true
for gone in /usr/bin/srdgd /usr/lib/srdgd /usr/share/srdgd /lib/systemd/system/srdgd.service; do
  [ ! -e "$R$gone" ] || fail "remove left $gone"
done
check_kept "remove"
[ "$(in_root dpkg-query -W -f='${Status}' srdgd)" = "deinstall ok config-files" ] || fail "status after remove"
ok "program gone, status: deinstall ok config-files"

step "apt-get purge srdgd"
apt_root purge srdgd >"$T/apt-purge.log" 2>&1 || { tail -20 "$T/apt-purge.log" >&2; fail "purge"; }
grep -E '^Purging' "$T/apt-purge.log" || true
for gone in /etc/srdgd /var/lib/srdgd; do
  [ ! -e "$R$gone" ] || fail "purge left $gone"
done
in_root dpkg-query -W srdgd >/dev/null 2>&1 && fail "dpkg still knows srdgd after purge"
in_root id srdgd >/dev/null || fail "purge removed the srdgd user (it is kept on purpose)"
ok "/etc/srdgd and /var/lib/srdgd gone; the srdgd user stays (see postrm)"
cleanup

# ---- arm64 under qemu-user ------------------------------------------------------------
step "arm64 under qemu-user ($(basename "$arm"))"
"$root/scripts/deb-sysroot.sh" arm64 >/dev/null
sysroot="$root/build/sysroot-arm64"
triplet="$(deb_arch_triplet arm64)"
# the package's files go into the sysroot for the run (qemu -L has one root)
# and come out again afterwards
arm_files="$T/arm64.files"
dpkg-deb -c "$arm" | awk '$1 !~ /^d/ {print $6}' | sed 's#^\./##' >"$arm_files"
# through the merged-/usr links (/lib -> usr/lib), not over them
dpkg-deb --fsys-tarfile "$arm" | tar -x --keep-directory-symlink -C "$sysroot"
qemu=(QEMU_CPU="$QEMU_CPU" qemu-aarch64-static -L "$sysroot")
v="$(env -i "${qemu[@]}" "$sysroot/usr/bin/srdgd" version)"
echo "$v"
[[ "$v" == "srdgd "*" linux/arm64" ]] || fail "arm64 srdgd version: $v"
env -i CAM_FRONT_DOOR_PASSWORD=test "${qemu[@]}" "$sysroot/usr/bin/srdgd" config check /etc/srdgd/srdgd.yaml
ok "arm64 config check of the packaged /etc/srdgd/srdgd.yaml"

# one SR run per architecture: the same face, sampler, seed, one ORT thread
face="$root/models/dist/demo/p1_gallery.jpg"
sr_args=(sr --in "$face" --attrs male=0,glasses=0,nobeard=1 --sampler ode --steps 3 --seed 7 --threads 1
  --models /usr/share/srdgd/models --ort-library /usr/lib/srdgd/libonnxruntime.so.1)
t0=$(date +%s)
env -i "${qemu[@]}" "$sysroot/usr/bin/srdgd" "${sr_args[@]}" --out "$T/sr-arm64.png"
t_arm=$(($(date +%s) - t0))
x="$T/x-amd64"
rm -rf "$x"
dpkg-deb -x "$amd" "$x"
amd_args=("${sr_args[@]}")
amd_args[-3]="$x/usr/share/srdgd/models"
amd_args[-1]="$x/usr/lib/srdgd/libonnxruntime.so.1"
t0=$(date +%s)
env -i "$x/usr/bin/srdgd" "${amd_args[@]}" --out "$T/sr-amd64.png"
t_amd=$(($(date +%s) - t0))
rm -rf "$x"
echo "srdgd sr: amd64 ${t_amd}s native, arm64 ${t_arm}s under qemu (QEMU_CPU=$QEMU_CPU)"
"$PY" - "$T/sr-amd64.png" "$T/sr-arm64.png" "$SR_TOLERANCE" <<'EOF'
import sys
import numpy as np
from PIL import Image
a = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.int16)
b = np.asarray(Image.open(sys.argv[2]).convert("RGB"), dtype=np.int16)
tol = int(sys.argv[3])
if a.shape != b.shape:
    sys.exit(f"FAIL: sizes differ: {a.shape} vs {b.shape}")
d = np.abs(a - b)
mse = float(np.mean((a - b) ** 2))
psnr = float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)
print(f"sr amd64 vs arm64 ({a.shape[1]}x{a.shape[0]}): max abs diff {d.max()} levels, "
      f"mean {d.mean():.3f}, pixels differing {np.count_nonzero(d.max(axis=2))}/{d.shape[0]*d.shape[1]}, "
      f"PSNR {psnr:.1f} dB (tolerance: max {tol})")
if d.max() > tol:
    sys.exit(f"FAIL: max abs diff {d.max()} > {tol}")
print("ok: arm64 SR output matches amd64")
EOF
step "done: test-deb passed in $(($(date +%s) - started))s"
