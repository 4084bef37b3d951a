"""THE 128x128 face crop, defined once (training, tests, evaluation, ONNX metadata).

Primary definition (on CelebA "aligned and cropped" images, 178 wide x 218 high):
  take the 120x120 box columns 29..148, rows 56..175 inclusive (PIL box (29, 56, 149, 176);
  in continuous coordinates, where pixel i covers [i, i+1), the box is x in [29, 149),
  y in [56, 176), centre (89, 116)), crop it FIRST (pixels outside the box never
  contribute), then resize 120 -> 128 with PIL's BICUBIC on the uint8 RGB image (Pillow's
  8-bit path, a = -0.5, result rounded to uint8), then divide by 255 -> float in [0, 1].
This is the framing under which the released SRDG classifiers work best
(spec/SRDG.md section 2).

Relative to the eyes (for the daemon, which does not see CelebA-aligned images):
CelebA's aligned release places faces by a similarity transform so that the eyes land near
fixed points. CelebA's landmark file (list_landmarks_align_celeba.txt) is not on this
machine, so the canonical eye centres ALIGNED_EYES were MEASURED here on the mean luminance
image of all 6,000 images of shared/data/celeba-aligned: per eye region the darkest point
after 5x5 box smoothing is pixel (69, 111) / (108, 111), the darkness-weighted centroid
(pixels within 4 grey levels of the minimum) is (68.97, 110.53) / (108.52, 110.60) in pixel
indices; we take continuous (69.25, 111.0) and (108.75, 111.0) (centroids + 0.5, made
symmetric about the image centre x = 89). Check them against CelebA's landmark file when it
is available (the mean face blurs pose variation). Inter-ocular distance 39.5 px, so
the box side is 120 / 39.5 = 3.038 eye distances and its centre lies 5.0 px = 0.127 eye
distances below the eye midpoint. The mapping from continuous aligned-image coordinates
(u, v) to continuous 128-crop coordinates is exact:
    x128 = (u - 29) * 128 / 120,   y128 = (v - 56) * 128 / 120
which puts the eyes at EYES_128 = (42.93, 58.67) and (85.07, 58.67). crop_from_eyes() gives
the (rotated) square for any image from two measured eye centres. All coordinates are
continuous: pixel i covers [i, i+1), an integer pixel index k is the point k + 0.5.
"""
import math

import numpy as np

ALIGNED_W, ALIGNED_H = 178, 218
BOX = (29, 56, 149, 176)  # PIL box: left, upper, right (exclusive), lower (exclusive)
BOX_SIZE = 120
OUT_SIZE = 128
CENTRE = (89.0, 116.0)  # continuous coordinates of the box centre in the aligned image

# Canonical eye centres in the aligned 178x218 image, measured on the subset's mean face
# (see module docstring). Continuous (x, y): left-in-image, right-in-image.
ALIGNED_EYES = ((69.25, 111.0), (108.75, 111.0))
EYE_DISTANCE_ALIGNED = ALIGNED_EYES[1][0] - ALIGNED_EYES[0][0]
EYE_MID_ALIGNED = ((ALIGNED_EYES[0][0] + ALIGNED_EYES[1][0]) / 2, (ALIGNED_EYES[0][1] + ALIGNED_EYES[1][1]) / 2)
CENTRE_BELOW_EYES_ALIGNED = CENTRE[1] - EYE_MID_ALIGNED[1]  # box centre offset below the eye midpoint


def aligned_to_crop(u, v):
    """Map continuous coordinates in the aligned image to continuous 128x128 crop coordinates."""
    s = OUT_SIZE / BOX_SIZE
    return (u - BOX[0]) * s, (v - BOX[1]) * s


EYES_128 = tuple(tuple(round(c, 2) for c in aligned_to_crop(*e)) for e in ALIGNED_EYES)


def crop_aligned(img):
    """PIL image (CelebA aligned, 178x218) -> uint8 array [128, 128, 3] (HWC, RGB)."""
    from PIL import Image

    if img.size != (ALIGNED_W, ALIGNED_H):
        raise ValueError(f"expected a {ALIGNED_W}x{ALIGNED_H} CelebA aligned image, got {img.size[0]}x{img.size[1]}")
    box = img.convert("RGB").crop(BOX)
    return np.asarray(box.resize((OUT_SIZE, OUT_SIZE), Image.BICUBIC), dtype=np.uint8)


def crop_file(path):
    from PIL import Image

    with Image.open(path) as im:
        return crop_aligned(im)


def to_float(u8):
    """uint8 HWC (or NHWC) -> float32 CHW (NCHW) in [0, 1]."""
    a = np.asarray(u8, dtype=np.float32) / 255.0
    return np.moveaxis(a, -1, -3)


def crop_from_eyes(left_eye, right_eye):
    """Crop square in any image from two eye centres (continuous coordinates).

    Returns (centre_x, centre_y, side, angle_radians): the box of side `side` centred at
    (centre_x, centre_y), rotated by `angle` (the eye line's angle), to be resampled to
    128x128. Uses the approximate ALIGNED_EYES; the primary definition is the aligned box.
    """
    (lx, ly), (rx, ry) = left_eye, right_eye
    d = math.hypot(rx - lx, ry - ly)
    if d <= 0:
        raise ValueError(f"eye centres coincide: {left_eye} {right_eye}")
    ang = math.atan2(ry - ly, rx - lx)
    k = d / EYE_DISTANCE_ALIGNED
    mx, my = (lx + rx) / 2, (ly + ry) / 2
    off = CENTRE_BELOW_EYES_ALIGNED * k
    cx, cy = mx - math.sin(ang) * off, my + math.cos(ang) * off
    # horizontal offset of the box centre from the eye midpoint, along the eye line
    dx = (CENTRE[0] - EYE_MID_ALIGNED[0]) * k
    cx, cy = cx + math.cos(ang) * dx, cy + math.sin(ang) * dx
    return cx, cy, BOX_SIZE * k, ang


def geometry():
    """The parts of the definition that change the pixels (cache keys compare these)."""
    return {"box_ltrb_exclusive": list(BOX), "out_size": OUT_SIZE, "resize": "crop then PIL BICUBIC on uint8 RGB, /255"}


def metadata():
    """The crop as a dict for ONNX metadata (srdgd.crop; models/README.md "Contracts").

    ref, box_xywh, size and resize are the keys the contract requires; the rest is detail."""
    return {
        "ref": "celeba_aligned_178x218",
        "box_xywh": [BOX[0], BOX[1], BOX_SIZE, BOX_SIZE],
        "size": OUT_SIZE,
        "resize": "bicubic",
        "resize_detail": "crop first, then PIL BICUBIC (a=-0.5) on uint8 RGB to 128x128, then /255",
        "box_cols": [BOX[0], BOX[2] - 1],
        "box_rows": [BOX[1], BOX[3] - 1],
        "centre_xy": list(CENTRE),
        "coordinates": "continuous: pixel i covers [i, i+1)",
        "eyes_aligned_xy": [list(e) for e in ALIGNED_EYES],
        "eyes_128_xy": [list(e) for e in EYES_128],
        "eyes_note": "eye centres measured on the mean face of the 6,000-image CelebA aligned subset; the box definition is primary",
        "box_side_over_eye_distance": round(BOX_SIZE / EYE_DISTANCE_ALIGNED, 6),
        "centre_below_eye_mid_over_eye_distance": round(CENTRE_BELOW_EYES_ALIGNED / EYE_DISTANCE_ALIGNED, 6),
    }
