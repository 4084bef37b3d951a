//go:build cgo

package ingest

/*
#cgo pkg-config: libavcodec libavutil libswscale
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

typedef struct {
	AVCodecContext *ctx;
	AVFrame *frame;
	AVPacket *pkt;
	struct SwsContext *sws;
	int cs_key; // colour conversion the sws context is set up for, -1 = none
} srd_dec;

static void srd_free(srd_dec *d) {
	if (d == NULL) return;
	sws_freeContext(d->sws);
	av_packet_free(&d->pkt);
	av_frame_free(&d->frame);
	avcodec_free_context(&d->ctx);
	free(d);
#ifdef __GLIBC__
	// Everything is freed, but glibc keeps the freed picture buffers in the
	// malloc arena of whichever thread freed them (each reconnect decodes on
	// another Go thread, hence another arena), so the RSS grew by megabytes
	// per reconnect until every arena was full (bench/RESULTS.md, "Camera
	// reconnect cycles"). Hand the free pages back once per session.
	malloc_trim(0);
#endif
}

// srd_new opens a single-threaded decoder. Frame threading would add a frame of
// latency per thread; cameras are decoded in parallel instead.
static srd_dec *srd_new(enum AVCodecID id, int *err) {
	// Corrupt input is counted by the caller; libav's own messages would flood stderr.
	av_log_set_level(AV_LOG_FATAL);
	const AVCodec *codec = avcodec_find_decoder(id);
	if (codec == NULL) { *err = AVERROR_DECODER_NOT_FOUND; return NULL; }
	srd_dec *d = calloc(1, sizeof(srd_dec));
	if (d == NULL) { *err = AVERROR(ENOMEM); return NULL; }
	d->cs_key = -1;
	d->ctx = avcodec_alloc_context3(codec);
	d->frame = av_frame_alloc();
	d->pkt = av_packet_alloc();
	if (d->ctx == NULL || d->frame == NULL || d->pkt == NULL) {
		srd_free(d);
		*err = AVERROR(ENOMEM);
		return NULL;
	}
	d->ctx->thread_count = 1;
	int r = avcodec_open2(d->ctx, codec, NULL);
	if (r < 0) { srd_free(d); *err = r; return NULL; }
	return d;
}

// srd_send hands one Annex-B access unit to the decoder. data stays owned by the
// caller: libavcodec copies non-refcounted packets.
static int srd_send(srd_dec *d, uint8_t *data, int size, int64_t pts) {
	d->pkt->data = data;
	d->pkt->size = size;
	d->pkt->pts = pts;
	d->pkt->dts = AV_NOPTS_VALUE;
	int r = avcodec_send_packet(d->ctx, d->pkt);
	d->pkt->data = NULL;
	d->pkt->size = 0;
	return r;
}

static int srd_receive(srd_dec *d) { return avcodec_receive_frame(d->ctx, d->frame); }
static void srd_unref(srd_dec *d) { av_frame_unref(d->frame); }
static int srd_eagain(void) { return AVERROR(EAGAIN); }
static int srd_eof(void) { return AVERROR_EOF; }
static int srd_width(srd_dec *d) { return d->frame->width; }
static int srd_height(srd_dec *d) { return d->frame->height; }
static int64_t srd_pts(srd_dec *d) { return d->frame->best_effort_timestamp; }
static int srd_corrupt(srd_dec *d) {
	return d->frame->decode_error_flags != 0 || (d->frame->flags & AV_FRAME_FLAG_CORRUPT) != 0;
}

// srd_to_bgr converts the current frame to packed BGR24 at dst (stride 3*width),
// reusing the sws context while size, format and colour signalling stay the same.
static int srd_to_bgr(srd_dec *d, uint8_t *dst) {
	const AVFrame *f = d->frame;
	enum AVPixelFormat fmt = f->format;
	int full = f->color_range == AVCOL_RANGE_JPEG;
	switch (fmt) { // the deprecated J formats mean full range
	case AV_PIX_FMT_YUVJ420P: fmt = AV_PIX_FMT_YUV420P; full = 1; break;
	case AV_PIX_FMT_YUVJ422P: fmt = AV_PIX_FMT_YUV422P; full = 1; break;
	case AV_PIX_FMT_YUVJ444P: fmt = AV_PIX_FMT_YUV444P; full = 1; break;
	default: break;
	}
	// Unspecified colour matrices are BT.601 (SD cameras); HD cameras signal BT.709.
	int cs = SWS_CS_ITU601;
	if (f->colorspace == AVCOL_SPC_BT709) cs = SWS_CS_ITU709;
	struct SwsContext *s = sws_getCachedContext(d->sws, f->width, f->height, fmt,
		f->width, f->height, AV_PIX_FMT_BGR24, SWS_BILINEAR, NULL, NULL, NULL);
	if (s == NULL) return -1;
	int key = cs * 2 + full;
	if (s != d->sws || key != d->cs_key) {
		d->sws = s;
		d->cs_key = key;
		sws_setColorspaceDetails(s, sws_getCoefficients(cs), full,
			sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
	}
	uint8_t *dst_data[4] = {dst, NULL, NULL, NULL};
	int dst_stride[4] = {3 * f->width, 0, 0, 0};
	return sws_scale(s, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst_data, dst_stride);
}

static void srd_strerror(int code, char *buf, size_t size) { av_strerror(code, buf, size); }
*/
import "C"

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// maxPictureSide bounds decoded sizes accepted from the stream (8K is 7680).
const maxPictureSide = 16384

type avDecoder struct {
	d      *C.srd_dec
	codec  string
	annexb []byte // reused Annex-B buffer
}

var _ Decoder = (*avDecoder)(nil)

// NewAVDecoder returns a libavcodec decoder for CodecH264 or CodecH265 that
// outputs BGR24 via libswscale. It runs single-threaded. It lowers libav's
// global log level to fatal, because decode errors are counted instead.
func NewAVDecoder(codec string) (Decoder, error) {
	var id C.enum_AVCodecID
	switch codec {
	case CodecH264:
		id = C.AV_CODEC_ID_H264
	case CodecH265:
		id = C.AV_CODEC_ID_HEVC
	default:
		return nil, fmt.Errorf("ingest: decoder for %q: %w", codec, ErrUnsupportedCodec)
	}
	var cerr C.int
	d := C.srd_new(id, &cerr)
	if d == nil {
		return nil, fmt.Errorf("ingest: open libavcodec %s decoder: %s", codec, avError(cerr))
	}
	return &avDecoder{d: d, codec: codec}, nil
}

func avError(code C.int) string {
	var buf [128]C.char
	C.srd_strerror(code, &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}

// Decode implements Decoder.
func (a *avDecoder) Decode(au [][]byte, pts time.Duration, alloc func(int) []byte) ([]Picture, error) {
	if a.d == nil {
		return nil, fmt.Errorf("ingest: %s decoder used after Close", a.codec)
	}
	buf := a.annexb[:0]
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		buf = append(buf, 0, 0, 0, 1)
		buf = append(buf, nalu...)
	}
	a.annexb = buf
	if len(buf) == 0 {
		return nil, nil
	}

	var firstErr error
	r := C.srd_send(a.d, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.int(len(buf)), C.int64_t(pts))
	if r < 0 && r != C.srd_eagain() {
		firstErr = fmt.Errorf("ingest: %s decode: %s", a.codec, avError(r))
	}

	var pics []Picture
	for {
		r := C.srd_receive(a.d)
		if r == C.srd_eagain() || r == C.srd_eof() {
			break
		}
		if r < 0 {
			if firstErr == nil {
				firstErr = fmt.Errorf("ingest: %s receive frame: %s", a.codec, avError(r))
			}
			break
		}
		pic, err := a.convert(pts, alloc)
		corrupt := C.srd_corrupt(a.d) != 0
		C.srd_unref(a.d)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if corrupt && firstErr == nil {
			// libavcodec concealed damage; the picture is usable but the error counts.
			firstErr = fmt.Errorf("ingest: %s decode: corrupt picture (concealed)", a.codec)
		}
		pics = append(pics, pic)
	}
	return pics, firstErr
}

// convert copies the current frame out as BGR24 into a buffer from alloc.
// fallbackPTS is used when the decoder could not attach the packet's pts.
func (a *avDecoder) convert(fallbackPTS time.Duration, alloc func(int) []byte) (Picture, error) {
	w, h := int(C.srd_width(a.d)), int(C.srd_height(a.d))
	if w <= 0 || h <= 0 || w > maxPictureSide || h > maxPictureSide {
		return Picture{}, fmt.Errorf("ingest: %s decoded picture has invalid size %dx%d", a.codec, w, h)
	}
	var pix []byte
	if alloc != nil {
		pix = alloc(3 * w * h)
	}
	if len(pix) != 3*w*h {
		pix = make([]byte, 3*w*h)
	}
	if r := C.srd_to_bgr(a.d, (*C.uint8_t)(unsafe.Pointer(&pix[0]))); r <= 0 {
		return Picture{}, fmt.Errorf("ingest: %s convert %dx%d to BGR24 failed (%d)", a.codec, w, h, int(r))
	}
	pts := fallbackPTS
	if p := int64(C.srd_pts(a.d)); p != math.MinInt64 { // AV_NOPTS_VALUE
		pts = time.Duration(p)
	}
	return Picture{PTS: pts, Width: w, Height: h, Pix: pix}, nil
}

// Close implements Decoder.
func (a *avDecoder) Close() error {
	if a.d != nil {
		C.srd_free(a.d)
		a.d = nil
	}
	return nil
}
