# Sourced by scripts/deb-*.sh: the C libraries the srdgd binary links, one
# list for the native and the cross build, the arm64 sysroot and the checks.
#
# OpenCV modules gocv's own C++ wrappers call into (the libraries a native
# `go build` leaves in NEEDED). The package build links exactly these
# (gocv's `customenv` tag) instead of pkg-config's opencv4, which names every
# module incl. contrib: a cross sysroot then needs only these libraries.
OPENCV_LINK_MODULES=(core imgproc imgcodecs videoio highgui objdetect dnn photo features2d calib3d video)
# Modules whose headers <opencv2/opencv.hpp> (included by gocv) pulls in.
OPENCV_HEADER_MODULES=(core calib3d features2d dnn flann highgui imgcodecs imgproc ml objdetect photo stitching video videoio)
OPENCV_SOVERSION=406
# FFmpeg: ingest/decode_avcodec.go links these through pkg-config; libavcodec.pc
# requires libswresample.
FFMPEG_DEV=(libavcodec-dev libavutil-dev libswscale-dev libswresample-dev)
FFMPEG_RUNTIME=(libavcodec59 libavutil57 libswscale6 libswresample4)

# Debian's name for a Go architecture and its multiarch triplet.
deb_arch_triplet() {
  case "$1" in
    amd64) echo x86_64-linux-gnu ;;
    arm64) echo aarch64-linux-gnu ;;
    *) echo "unsupported architecture $1" >&2; return 1 ;;
  esac
}
# The npm onnxruntime-node folder (bin/napi-v6/linux/<this>) for an architecture.
deb_arch_ort() {
  case "$1" in
    amd64) echo x64 ;;
    arm64) echo arm64 ;;
    *) echo "unsupported architecture $1" >&2; return 1 ;;
  esac
}

# The Debian mirror this machine's apt uses (debian.sources or sources.list),
# so the sysroot and the test root come from where the host's packages do.
# DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR override.
deb_mirror() {
  local want="$1" u # want: debian or debian-security
  for u in $(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -oE 'https?://[^ ]+' | sed 's#/*$##'); do
    case "$u" in */"$want") echo "$u"; return 0 ;; esac
  done
  echo "http://deb.debian.org/$want"
}
DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(deb_mirror debian)}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(deb_mirror debian-security)}"
DEBIAN_SUITE=bookworm

# The folders of a sysroot the dynamic loader searches: the multiarch ones,
# /usr/lib, and those ld.so.conf.d adds. The cross link passes them as
# -rpath-link, qemu-user as LD_LIBRARY_PATH.
deb_sysroot_libdirs() {
  local sysroot="$1" triplet="$2" d
  for d in "/usr/lib/$triplet" /usr/lib $(cat "$sysroot"/etc/ld.so.conf.d/*.conf 2>/dev/null | grep '^/'); do
    d="${d#/lib/}"; d="/${d#/}"
    case "$d" in /"$triplet") d="/usr/lib/$triplet" ;; esac
    [ -d "$sysroot$d" ] && echo "$sysroot$d"
  done | awk '!seen[$0]++'
}
