#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library (CPU build) from the npm package
# onnxruntime-node and places it in third_party/onnxruntime/lib/.
# `npm install onnxruntime-node` fails (its install script reaches for a CUDA add-on),
# so the tarball is fetched with `npm pack` and unpacked by hand.
set -euo pipefail
VERSION="${ORT_NPM_VERSION:-1.24.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/onnxruntime/lib"
if [ -f "$dest/libonnxruntime.so.1" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  echo "onnxruntime $VERSION already in $dest"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-node@$VERSION" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp"
src="$tmp/package/bin/napi-v6/linux/x64"
mkdir -p "$dest"
cp "$src"/libonnxruntime.so.1* "$dest/"
# the versioned file name differs between releases; keep a stable name too
ln -sf libonnxruntime.so.1 "$dest/libonnxruntime.so"
echo "$VERSION" > "$dest/VERSION"
echo "onnxruntime $VERSION -> $dest"
