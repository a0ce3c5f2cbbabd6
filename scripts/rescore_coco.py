"""Scores a detection run's COCO files (written by `nabla evaluate RUN`) with pycocotools.

usage: python scripts/rescore_coco.py RUN   (needs pycocotools; prints its AP@[.5:.95], AP@.5, AP@.75)
"""
import sys, io, contextlib
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
run = sys.argv[1]
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(f"{run}/test_annotations.json")
    dt = gt.loadRes(f"{run}/detections.json")
    e = COCOeval(gt, dt, "bbox"); e.evaluate(); e.accumulate(); e.summarize()
print("pycocotools: AP@[.5:.95] %.6f AP@.5 %.6f AP@.75 %.6f" % tuple(e.stats[:3]))
