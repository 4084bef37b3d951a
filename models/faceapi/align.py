"""face-api's crops around its two networks, on PIL images (for tests, evaluation and enrolment tools).

Landmarks: face-api crops the detector's box, pads it to a square with black (the short side,
centred) and resizes to 112x112; the net returns (x, y) relative to that square.
Embedder: face-api's dlib alignment (FaceLandmarks.alignDlib): eye and mouth centres from the
68 landmarks, an axis-aligned square box of side floor(mean eye->mouth distance / 0.45) placed
at rel_x = 0.5, rel_y = 0.43 around the centroid of the three centres, clipped at the image,
padded to a square (black, centred) and resized to 150x150.

Resizing here is Pillow's bilinear filter (face-api uses the canvas' drawImage or TF's
resizeBilinear, which differ slightly); the networks' parity tests feed identical tensors to
every implementation, so this choice does not enter them.
"""
import math

import numpy as np
from PIL import Image

REL_X, REL_Y, REL_SCALE = 0.5, 0.43, 0.45


def square_input(img, box, size):
    """Crop box (x, y, w, h; ints, clipped to the image) from a PIL RGB image, pad the short side
    with black centred on it, resize to size x size. Returns (uint8 [size,size,3], (x0, y0, side))
    where (x0, y0) is the image position of the padded square's top-left corner."""
    x, y, w, h = clip_box(box, img.width, img.height)
    crop = img.crop((x, y, x + w, y + h))
    side = max(w, h)
    # face-api's padToSquare (isCenterImage): round(diff / 2) after, the rest before
    diff = side - min(w, h)
    after = int(math.floor(diff * 0.5 + 0.5))
    before = diff - after
    canvas = Image.new("RGB", (side, side))
    if w < h:
        canvas.paste(crop, (before, 0))
        x0, y0 = x - before, y
    else:
        canvas.paste(crop, (0, before))
        x0, y0 = x, y - before
    if side != size:
        canvas = canvas.resize((size, size), Image.BILINEAR)
    return np.asarray(canvas, dtype=np.uint8), (x0, y0, side)


def clip_box(box, width, height):
    """face-api's Box.clipAtImageBorders followed by floor()."""
    x, y, w, h = box
    cx, cy = max(x, 0), max(y, 0)
    cw = min(x + w - cx, width - cx)
    ch = min(y + h - cy, height - cy)
    return int(math.floor(cx)), int(math.floor(cy)), int(math.floor(cw)), int(math.floor(ch))


def landmarks_to_image(rel, origin):
    """rel [68,2] relative to the square input -> image coordinates, origin = (x0, y0, side)."""
    x0, y0, side = origin
    return np.asarray(rel, dtype=np.float64) * side + np.array([x0, y0], dtype=np.float64)


def dlib_box(points):
    """points [68,2] in image coordinates -> face-api's dlib-aligned box (x, y, size, size) (before clipping)."""
    pts = np.asarray(points, dtype=np.float64)
    eye_a, eye_b, mouth = pts[36:42].mean(0), pts[42:48].mean(0), pts[48:68].mean(0)
    dist = (np.linalg.norm(mouth - eye_a) + np.linalg.norm(mouth - eye_b)) / 2
    size = int(math.floor(dist / REL_SCALE))
    c = (eye_a + eye_b + mouth) / 3
    x = int(math.floor(max(0.0, c[0] - REL_X * size)))
    y = int(math.floor(max(0.0, c[1] - REL_Y * size)))
    return x, y, size, size
