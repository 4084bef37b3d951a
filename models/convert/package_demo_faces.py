"""package-demo-faces: the faces of `srdgd demo`, cut from face-api's sample photos.

    /usr/bin/python3 -m models package-demo-faces \
        --tgz models/runs/npm-cache/vladmandic-face-api-1.7.15.tgz --out models/dist/demo

npm @vladmandic/face-api (MIT) ships six group photos in demo/sample1..6.jpg. The demo scene
moves eight of those faces through a synthetic surveillance frame at 12-40 px, and the demo
gallery enrols the same eight people. For each person this writes:

- `<id>_gallery.jpg`: the enrolment photo, 320x320, the face upright at about 55 % of the
  height (what an installer would enrol: a clear, full-resolution face);
- `<id>_sprite.png`: the head for the scene, 128x128 RGBA with a soft elliptical alpha,
  MIRRORED left-right and from a tighter framing, so the probe the daemon sees is not
  pixel-identical to the enrolled photo;
- `manifest.json`: ids, display names, source photo and box, the licence.

Both images come from the same photo of each person (face-api ships no second photo of
anyone): the demo shows the tiny-face -> SR -> match chain, not cross-photo recognition.
The face boxes below were found by srdgd's own BlazeFace detector (`srdgd detect --json` on
each sample photo, gate "ok", frontalness >= 0.7); the framing is the detector's eye-based
square (centre, side, roll angle in radians).
"""
import argparse
import io
import json
import math
import os
import tarfile

from models.__main__ import UserError

# (id, display name, sample photo, framing centre x, y, side, roll angle)
FACES = [
    ("p1", "Demo Person 1", 2, 992.4, 340.9, 233.7, 0.0000),
    ("p2", "Demo Person 2", 3, 1166.3, 338.0, 315.5, 0.2354),
    ("p3", "Demo Person 3", 3, 1604.6, 418.1, 279.5, 0.0000),
    ("p4", "Demo Person 4", 5, 1190.4, 302.0, 227.4, 0.0000),
    ("p5", "Demo Person 5", 5, 473.4, 999.5, 294.0, 0.0000),
    ("p6", "Demo Person 6", 6, 377.2, 612.7, 300.3, -0.2161),
    ("p7", "Demo Person 7", 6, 1278.1, 438.1, 295.1, 0.0000),
    ("p8", "Demo Person 8", 6, 1576.9, 396.3, 315.1, 0.2837),
]
LICENSE = ("MIT: photos from npm @vladmandic/face-api@1.7.15 demo/sample*.jpg, "
           "Copyright (c) Vladimir Mandic; see models/dist/demo/README.md")


def upright_crop(img, cx, cy, side, angle, out):
    """Square of `side` px centred on (cx, cy), rotated by -angle so the face is upright."""
    from PIL import Image
    big = int(math.ceil(side * 1.5))
    box = (int(cx - big / 2), int(cy - big / 2), int(cx - big / 2) + big, int(cy - big / 2) + big)
    region = img.crop(box)  # PIL pads outside the photo with black
    region = region.rotate(math.degrees(angle), resample=Image.BICUBIC, center=(cx - box[0], cy - box[1]))
    c = big / 2
    sq = region.crop((int(c - side / 2), int(c - side / 2), int(c - side / 2) + int(side), int(c - side / 2) + int(side)))
    return sq.resize((out, out), Image.LANCZOS)


def main(argv):
    ap = argparse.ArgumentParser(prog="models package-demo-faces")
    ap.add_argument("--tgz", required=True, help="npm pack of @vladmandic/face-api@1.7.15")
    ap.add_argument("--out", required=True, help="output folder (models/dist/demo)")
    a = ap.parse_args(argv)
    from PIL import Image, ImageDraw, ImageFilter, ImageOps
    if not os.path.exists(a.tgz):
        raise UserError(f"{a.tgz}: no such file (npm pack @vladmandic/face-api@1.7.15)")
    photos = {}
    with tarfile.open(a.tgz) as t:
        for n in sorted({f[2] for f in FACES}):
            member = f"package/demo/sample{n}.jpg"
            try:
                photos[n] = Image.open(io.BytesIO(t.extractfile(member).read())).convert("RGB")
            except KeyError:
                raise UserError(f"{a.tgz}: no {member} (is this face-api 1.7.15?)")
        lic = t.extractfile("package/LICENSE").read().decode()
    os.makedirs(a.out, exist_ok=True)
    # soft ellipse: the head, feathered, so the sprite blends into the scene
    mask = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(mask).ellipse((18, 6, 110, 124), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(5))
    people = []
    for pid, name, n, cx, cy, side, angle in FACES:
        img = photos[n]
        # gallery photo: wider framing (face ~55 % of the height)
        g = upright_crop(img, cx, cy, side * 1.45, angle, 320)
        g.save(os.path.join(a.out, f"{pid}_gallery.jpg"), quality=90)
        # sprite: tighter head framing, mirrored
        s = ImageOps.mirror(upright_crop(img, cx, cy, side * 1.25, angle, 128)).convert("RGBA")
        s.putalpha(mask)
        s.save(os.path.join(a.out, f"{pid}_sprite.png"), optimize=True)
        people.append({"id": pid, "name": name, "gallery": f"{pid}_gallery.jpg", "sprite": f"{pid}_sprite.png",
                       "source": f"@vladmandic/face-api@1.7.15 demo/sample{n}.jpg",
                       "framing": {"centre": [cx, cy], "side": side, "angle": angle}})
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump({"license": LICENSE, "people": people}, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.out, "LICENSE.face-api"), "w") as f:
        f.write(lic)
    print(f"package-demo-faces: {len(people)} people -> {a.out}")
    return 0
