#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library (CPU build) from the npm package
# onnxruntime-node and places it in third_party/onnxruntime/lib/.
# `npm install onnxruntime-node` fails (its install script reaches for a CUDA add-on),
# so the tarball is fetched with `npm pack` and unpacked by hand.
#
# Environment (the .deb build uses them):
#   ORT_ARCH       the package's linux/<ORT_ARCH> build: x64 (default) or arm64
#   ORT_DEST       where to put it (default third_party/onnxruntime/lib for x64,
#                  build/onnxruntime-arm64/lib for arm64)
#   ORT_NPM_CACHE  keep the npm tarball in this folder and reuse it
set -euo pipefail
VERSION="${ORT_NPM_VERSION:-1.24.1}"
ARCH="${ORT_ARCH:-x64}"
root="$(cd "$(dirname "$0")/.." && pwd)"
case "$ARCH" in
  x64) dest="${ORT_DEST:-$root/third_party/onnxruntime/lib}" ;;
  arm64) dest="${ORT_DEST:-$root/build/onnxruntime-arm64/lib}" ;;
  *) echo "fetch-ort: ORT_ARCH must be x64 or arm64, not $ARCH" >&2; exit 2 ;;
esac
if [ -f "$dest/libonnxruntime.so.1" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  echo "onnxruntime $VERSION already in $dest"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tgz="onnxruntime-node-$VERSION.tgz"
if [ -n "${ORT_NPM_CACHE:-}" ] && [ -f "$ORT_NPM_CACHE/$tgz" ]; then
  cp "$ORT_NPM_CACHE/$tgz" "$tmp/"
else
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$VERSION" >/dev/null)
  if [ -n "${ORT_NPM_CACHE:-}" ]; then mkdir -p "$ORT_NPM_CACHE" && cp "$tmp/$tgz" "$ORT_NPM_CACHE/"; fi
fi
src="package/bin/napi-v6/linux/$ARCH"
tar -xzf "$tmp/$tgz" -C "$tmp" "$src"
src="$tmp/$src"
mkdir -p "$dest"
cp "$src"/libonnxruntime.so.1* "$dest/"
# the versioned file name differs between releases; keep a stable name too
ln -sf libonnxruntime.so.1 "$dest/libonnxruntime.so"
echo "$VERSION" > "$dest/VERSION"
echo "onnxruntime $VERSION linux/$ARCH -> $dest"
