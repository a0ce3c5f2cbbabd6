"""Golden values for nabla's detection metrics, from pycocotools and the VOC devkit.

Writes tests/golden/detection_ap.json, read by tests/detection_ap.rs (which needs no
Python). Run: python scripts/golden/detection_ap.py (numpy, pycocotools).

Each case is a fixed detection set built with a seeded numpy generator: several images and
classes, crowd boxes, images without detections, a category without ground truth, boxes of
every COCO size range, an image with more than 100 detections of one class, scores rounded
so that many tie. For each case:
- `coco`: pycocotools' COCOeval (iouType "bbox") summary `stats` (12 numbers), and per
  category its AP (precision[:, :, k, 0, 2] averaged over entries > -1) and AP@0.5; null
  for a category without ground truth.
- `voc`: per category with ground truth, at each of COCO's ten IoU thresholds, detections
  matched the VOC devkit's way (`voc_match` below) and the curve scored by the devkit's
  `voc_ap` (all-point and 11-point) and by COCO's 101-point rule; the recall/precision
  curve at IoU 0.5; and the means (mAP@0.5, @0.75, @[.5:.95]) over categories with
  ground truth.
"""
import contextlib
import copy
import io
import json
import os

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "detection_ap.json")
IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)


# --- VOC devkit reference ---------------------------------------------------------------
# voc_ap: copied verbatim from py-faster-rcnn, lib/datasets/voc_eval.py (Bharath Hariharan,
# the Python port of the VOC devkit's VOCevaldet.m / VOCap.m), MIT licence.
def voc_ap(rec, prec, use_07_metric=False):
    """ ap = voc_ap(rec, prec, [use_07_metric])
    Compute VOC AP given precision and recall.
    If use_07_metric is true, uses the
    VOC 07 11 point method (default:False).
    """
    if use_07_metric:
        # 11 point metric
        ap = 0.
        for t in np.arange(0., 1.1, 0.1):
            if np.sum(rec >= t) == 0:
                p = 0
            else:
                p = np.max(prec[rec >= t])
            ap = ap + p / 11.
    else:
        # correct AP calculation
        # first append sentinel values at the end
        mrec = np.concatenate(([0.], rec, [1.]))
        mpre = np.concatenate(([0.], prec, [0.]))

        # compute the precision envelope
        for i in range(mpre.size - 1, 0, -1):
            mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])

        # to calculate area under PR curve, look for points
        # where X axis (recall) changes value
        i = np.where(mrec[1:] != mrec[:-1])[0]

        # and sum (\Delta recall) * prec
        ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return ap


def voc_match(gts, dets, ovthresh):
    """The matching loop of voc_eval.py (same source), for one class, with three changes
    that nabla documents as its convention: continuous coordinates (no "+1" in widths and
    areas, as COCO), IoU >= threshold (VOCevaldet.m's `ovmax >= minoverlap`; voc_eval.py
    has `>`), and a stable sort by score (voc_eval.py's argsort is not stable on ties).
    gts: {image: [(x1, y1, x2, y2, difficult)]}; dets: [(image, score, x1, y1, x2, y2)].
    Returns rec, prec (numpy arrays) or None when there are no positives."""
    class_recs = {}
    npos = 0
    for img, boxes in gts.items():
        bbox = np.array([b[:4] for b in boxes], dtype=np.float64).reshape(-1, 4)
        difficult = np.array([b[4] for b in boxes]).astype(bool)
        npos = npos + sum(~difficult)
        class_recs[img] = {"bbox": bbox, "difficult": difficult, "det": [False] * len(boxes)}
    if npos == 0:
        return None
    confidence = np.array([d[1] for d in dets], dtype=np.float64)
    BB = np.array([d[2:] for d in dets], dtype=np.float64).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence, kind="mergesort")
    BB = BB[sorted_ind, :]
    image_ids = [dets[x][0] for x in sorted_ind]
    nd = len(image_ids)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    keep = np.ones(nd, dtype=bool)
    for d in range(nd):
        R = class_recs.get(image_ids[d], {"bbox": np.zeros((0, 4)), "difficult": [], "det": []})
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin, 0.)
            ih = np.maximum(iymax - iymin, 0.)
            inters = iw * ih
            uni = ((bb[2] - bb[0]) * (bb[3] - bb[1]) +
                   (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters)
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax >= ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.
            else:
                keep[d] = False  # a difficult box: neither tp nor fp
        else:
            fp[d] = 1.
    tp, fp = tp[keep], fp[keep]
    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return rec, prec


def coco_101(rec, prec):
    """COCOeval.accumulate's reading of one curve: the envelope at 101 recall points."""
    rec_thrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
    pr = prec.tolist()
    for i in range(len(pr) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    q = np.zeros(len(rec_thrs))
    inds = np.searchsorted(rec, rec_thrs, side="left")
    for ri, pi in enumerate(inds):
        if pi >= len(pr):
            break
        q[ri] = pr[pi]
    return float(np.mean(q))


# --- the fixed detection sets ----------------------------------------------------------
def make_case(name, seed, n_images, cat_ids, empty_cat, dense_image=False, tie_round=1):
    rng = np.random.default_rng(seed)
    W, H = 640.0, 480.0
    images, anns, dets = [], [], []
    ann_id = 1
    for i in range(n_images):
        img_id = 10 + 3 * i  # ids that are not indices
        images.append({"id": img_id, "file_name": f"img{img_id}.jpg", "width": int(W), "height": int(H)})
        for _ in range(rng.integers(0, 6)):
            cat = int(rng.choice([c for c in cat_ids if c != empty_cat]))
            w = float(np.exp(rng.uniform(np.log(6), np.log(300))))
            h = float(np.clip(w * np.exp(rng.normal(0, 0.4)), 4, 400))
            x = float(rng.uniform(0, W - w))
            y = float(rng.uniform(0, H - h))
            crowd = int(rng.random() < 0.12)
            # A segmentation's area is smaller than its box: COCO's ranges use this one.
            area = w * h * float(rng.uniform(0.6, 1.0))
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat,
                         "bbox": [x, y, w, h], "area": area, "iscrowd": crowd})
            ann_id += 1
            if i % 5 == 4:
                continue  # every fifth image gets no detections at all
            for _ in range(rng.integers(0, 3)):
                jit = rng.normal(0, 0.06, 4)
                dw, dh = w * np.exp(jit[2]), h * np.exp(jit[3])
                dx, dy = x + w * jit[0], y + h * jit[1]
                dcat = cat if rng.random() < 0.85 else int(rng.choice(cat_ids))
                dets.append((img_id, dcat, [dx, dy, dw, dh]))
        if i % 5 == 4:
            continue
        for _ in range(rng.integers(0, 4)):  # false positives, some of the empty category
            w = float(np.exp(rng.uniform(np.log(6), np.log(200))))
            h = float(w * np.exp(rng.normal(0, 0.3)))
            dets.append((img_id, int(rng.choice(cat_ids)),
                         [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), w, h]))
    if dense_image:
        img_id = images[0]["id"]
        for _ in range(130):
            w = float(rng.uniform(10, 120))
            dets.append((img_id, cat_ids[0], [float(rng.uniform(0, 500)), float(rng.uniform(0, 350)), w, w * 0.8]))
    results = []
    for img_id, cat, (x, y, w, h) in dets:
        x1, y1 = max(x, 0.0), max(y, 0.0)
        x2, y2 = min(x + w, W), min(y + h, H)
        if x2 <= x1 or y2 <= y1:
            continue
        score = round(float(rng.uniform(0.05, 1.0)), tie_round)  # rounded: many ties
        results.append({"image_id": img_id, "category_id": cat,
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"class{c}"} for c in cat_ids]}
    return {"name": name, "gt": gt, "detections": results}


def score(case):
    gt, results = case["gt"], case["detections"]
    coco = COCO()
    coco.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        dt = coco.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    cat_ids = sorted(c["id"] for c in gt["categories"])
    class_ap, class_ap50 = {}, {}
    for k, c in enumerate(cat_ids):
        s = prec[:, :, k, 0, 2]
        class_ap[str(c)] = float(np.mean(s[s > -1])) if (s > -1).any() else None
        s = prec[0, :, k, 0, 2]
        class_ap50[str(c)] = float(np.mean(s[s > -1])) if (s > -1).any() else None
    case["coco"] = {"stats": [float(x) for x in ev.stats], "class_ap": class_ap,
                    "class_ap50": class_ap50}

    voc = {"classes": {}}
    per_t = {"ap_all": [], "ap_11": [], "ap_101": []}
    for c in cat_ids:
        gts = {}
        for a in gt["annotations"]:
            if a["category_id"] == c:
                x, y, w, h = a["bbox"]
                gts.setdefault(a["image_id"], []).append((x, y, x + w, y + h, a["iscrowd"]))
        dets = [(r["image_id"], r["score"], r["bbox"][0], r["bbox"][1],
                 r["bbox"][0] + r["bbox"][2], r["bbox"][1] + r["bbox"][3])
                for r in results if r["category_id"] == c]
        out = {"ap_all": [], "ap_11": [], "ap_101": []}
        for t in IOU_THRS:
            m = voc_match(gts, dets, t)
            if m is None:
                out = None
                break
            rec, prec_ = m
            out["ap_all"].append(float(voc_ap(rec, prec_)))
            out["ap_11"].append(float(voc_ap(rec, prec_, use_07_metric=True)))
            out["ap_101"].append(coco_101(rec, prec_))
            if t == 0.5:
                out["recall50"] = rec.tolist()
                out["precision50"] = prec_.tolist()
        voc["classes"][str(c)] = out
        if out is not None:
            for key in per_t:
                per_t[key].append(out[key])
    for key, v in per_t.items():
        v = np.array(v)  # [classes with ground truth, T]
        voc[f"map50_{key}"] = float(v[:, 0].mean())
        voc[f"map75_{key}"] = float(v[:, 5].mean())
        voc[f"map_{key}"] = float(v.mean())
    case["voc"] = voc
    return case


cases = [
    make_case("mixed", 0, 12, [1, 3, 7, 9], empty_cat=9),
    make_case("dense", 1, 6, [2, 5], empty_cat=None, dense_image=True),
    make_case("ties", 2, 10, [1, 2, 3], empty_cat=3, tie_round=0),
    make_case("many", 3, 40, [1, 2, 4, 8, 16], empty_cat=16, tie_round=2),
]
out = {"source": "scripts/golden/detection_ap.py (pycocotools COCOeval, VOC devkit voc_ap)",
       "cases": [score(c) for c in cases]}
with open(OUT, "w") as f:
    json.dump(out, f)
for c in out["cases"]:
    print(c["name"], len(c["gt"]["annotations"]), "boxes", len(c["detections"]), "detections",
          "AP", round(c["coco"]["stats"][0], 4), "AP50", round(c["coco"]["stats"][1], 4),
          "VOC mAP50", round(c["voc"]["map50_ap_all"], 4))
