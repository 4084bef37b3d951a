"""Open-set rates against the size of the gallery, from the descriptors `srdgd eval` cached.

    /usr/bin/python3 bench/srmatch/gallery_size.py OUT/test_x8/cache.jsonl METHOD THRESHOLD MARGIN

For each gallery size N, 50 random sets of N identities (one photo each, the eval's gallery
photos) are enrolled; probes of those people are known (DIR: identified as themselves and
accepted; wrong: accepted as someone else), probes of everyone else are unknown people
(FPIR: accepted as anyone). Decision as in the daemon: best similarity >= threshold and a
lead of >= margin over the runner-up. Identities come from the CelebA labels.csv next to
the shared data (CELEBA env, default ../shared/data/celeba-aligned).
"""
import csv
import json
import os
import sys

import numpy as np


def main(argv):
    cache, method, th, margin = argv[0], argv[1], float(argv[2]), float(argv[3])
    celeba = os.environ.get("CELEBA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "celeba-aligned"))
    with open(os.path.join(celeba, "labels.csv"), newline="") as f:
        ident = {r["image"]: r["celeba_identity"] for r in csv.DictReader(f)}
    gal, probes = {}, {}
    with open(cache) as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r["kind"] == "gallery":
                gal[r["image"]] = r["embedding"]
            elif r.get("method") == method:
                probes[r["image"]] = r["embedding"]
    if not probes:
        sys.exit(f"{cache}: no probes of method {method}")
    gn = sorted(gal)
    G = np.array([gal[g] for g in gn], np.float64)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    gid = np.array([ident[g] for g in gn])
    pn = sorted(probes)
    P = np.array([probes[p] for p in pn], np.float64)
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    pid = np.array([ident[p] for p in pn])
    S = P @ G.T
    rng = np.random.default_rng(0)
    print(f"{len(pn)} probes ({method}), {len(gn)} gallery identities, threshold {th}, margin {margin}")
    print("| gallery people | DIR | wrong | FPIR | known / unknown probes per draw (mean) |")
    print("|---|---|---|---|---|")
    for n in (5, 10, 20, 50, 100, 200):
        dirs, wrongs, fpirs, nk, nu = [], [], [], [], []
        for _ in range(50 if n < len(gn) else 1):
            cols = np.sort(rng.choice(len(gn), n, replace=False))
            ids = set(gid[cols])
            sub = S[:, cols]
            order = np.argsort(-sub, axis=1)
            top = sub[np.arange(len(pn)), order[:, 0]]
            lead = top - (sub[np.arange(len(pn)), order[:, 1]] if n > 1 else -np.inf)
            acc = (top >= th) & (lead >= margin)
            who = gid[cols][order[:, 0]]
            known = np.array([p in ids for p in pid])
            k, u = known.sum(), (~known).sum()
            if k:
                dirs.append((acc & known & (who == pid)).sum() / k)
                wrongs.append((acc & known & (who != pid)).sum() / k)
            if u:
                fpirs.append((acc & ~known).sum() / u)
            nk.append(k)
            nu.append(u)
        f = lambda v: f"{100 * np.mean(v):.1f}" if v else "-"
        print(f"| {n} | {f(dirs)} | {f(wrongs)} | {f(fpirs)} | {np.mean(nk):.0f} / {np.mean(nu):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
