#!/usr/bin/env python3
"""Checks a `nabla train --report --tensorboard TB` run from the outside.

usage: check_report.py RUN_DIR TB_DIR EVALUATE_JSON

- TB_DIR's event files, read back by TensorBoard's own EventAccumulator, hold the same
  per-epoch values as RUN_DIR/history.json (Keras' layout: train/epoch_loss <- loss,
  validation/epoch_loss <- val_loss, train/epoch_learning_rate <- lr, ...).
- RUN_DIR/report/report.json agrees with `nabla evaluate RUN_DIR --confusion --json`
  (EVALUATE_JSON): the same confusion matrix; the misclassified grid's labels and
  predictions are off-diagonal entries of it, as many as it has; the misclassified total
  is the off-diagonal sum; the per-class figures add up to the totals.
- report.html has every section, its pictures embedded, and the class names.

Prints one line per check and ends with "N passed, M failed"; exits 1 on a failure.
"""
import json
import os
import struct
import sys
from collections import Counter

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok    " if ok else "FAIL  ") + name + (f": {detail}" if detail else ""))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def tensorboard_checks(history, tb_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = {}
    for run in ("train", "validation"):
        path = os.path.join(tb_dir, run)
        if os.path.isdir(path):
            acc = EventAccumulator(path, size_guidance={"scalars": 0})
            acc.Reload()
            runs[run] = acc
    check("event files for train and validation", set(runs) == {"train", "validation"},
          f"runs found: {sorted(runs)}")
    epochs = history["epoch"]
    for key, values in sorted(history["history"].items()):
        if key.startswith("val_"):
            run, tag = "validation", "epoch_" + key[4:]
        elif key == "lr":
            run, tag = "train", "epoch_learning_rate"
        else:
            run, tag = "train", "epoch_" + key
        acc = runs.get(run)
        if acc is None or tag not in acc.Tags()["scalars"]:
            check(f"{run}/{tag} (history '{key}')", False, "tag missing")
            continue
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        got = [e.value for e in events]
        # Both sides are float32: history.json prints the shortest decimal that reads
        # back as the same float32, TensorBoard gives the float32 widened to a double;
        # so they must be equal bit for bit once rounded to float32.
        same = steps == epochs and len(got) == len(values) and all(
            f32(g) == f32(v) for g, v in zip(got, values))
        check(f"{run}/{tag} == history['{key}']", same,
              f"steps {steps}, values {[round(g, 6) for g in got]}")


def report_checks(run_dir, evaluate):
    report = json.load(open(os.path.join(run_dir, "report", "report.json")))
    cm = report["confusion_matrix"]
    k = len(cm)
    total = sum(map(sum, cm))
    diag = sum(cm[i][i] for i in range(k))
    off = total - diag
    t = report["test"]
    check("confusion matrix == `nabla evaluate --confusion`", cm == evaluate["confusion_matrix"])
    check("misclassified total == off-diagonal sum", t["misclassified"] == off == evaluate["misclassified"],
          f"{t['misclassified']} vs {off} vs {evaluate['misclassified']}")
    check("samples == matrix sum", t["samples"] == total and t["correct"] == diag,
          f"{t['samples']} samples, {t['correct']} correct")
    check("accuracy == evaluate's", abs(t["accuracy"] - evaluate["accuracy"]) < 1e-6,
          f"{t['accuracy']} vs {evaluate['accuracy']}")
    grid = report["misclassified"]
    pairs = Counter((m["label"], m["prediction"]) for m in grid)
    n = report["options"]["misclassified"]
    check("grid shows the first min(N, misclassified) images", len(grid) == min(n, off) and
          [m["index"] for m in grid] == sorted(m["index"] for m in grid),
          f"{len(grid)} shown of {off} (N = {n})")
    check("grid labels -> predictions are confusion counts",
          all(l != p and cm[l][p] >= n for (l, p), n in pairs.items()),
          ", ".join(f"{l}->{p} x{n} (matrix {cm[l][p]})" for (l, p), n in sorted(pairs.items())[:6]))
    names = report["class_names"]
    check("grid names are the model's class names",
          all(m["label_name"] == names[m["label"]] and m["prediction_name"] == names[m["prediction"]]
              for m in grid))
    pc = report["per_class"]
    check("per-class supports sum to the samples", sum(c["support"] for c in pc) == total)
    check("per-class predicted counts sum to the samples", sum(c["predicted"] for c in pc) == total)
    check("per-class correct counts sum to the correct total", sum(c["correct"] for c in pc) == diag)
    check("per-class figures match the matrix", all(
        c["support"] == sum(cm[c["class"]]) and c["predicted"] == sum(r[c["class"]] for r in cm)
        and c["correct"] == cm[c["class"]][c["class"]] for c in pc))
    html = open(os.path.join(run_dir, "report", "report.html"), encoding="utf-8").read()
    sections = ["overview", "curves", "confusion", "per-class", "misclassified", "filters",
                "feature-maps", "summary"]
    missing = [s for s in sections if f'<section id="{s}">' not in html]
    check("report.html has every section", not missing, f"missing {missing}" if missing else "")
    pictures = report["pictures"]
    check("pictures: curves, matrix, per-class, grid, filters, feature maps",
          set(pictures) >= {"loss_curves", "accuracy_curves", "confusion_matrix", "per_class",
                            "misclassified", "filters", "feature_maps"}, ", ".join(pictures))
    check("every picture embedded in the page", html.count('src="data:image/png;base64,') == len(pictures))
    check("no external resources", "http://" not in html.replace("http://www.w3.org", "") and
          "https://" not in html)
    check("class names on the page", all(n.replace("&", "&amp;") in html for n in names),
          ", ".join(names))


def main():
    run_dir, tb_dir, evaluate_json = sys.argv[1:4]
    history = json.load(open(os.path.join(run_dir, "history.json")))
    evaluate = json.load(open(evaluate_json))
    tensorboard_checks(history, tb_dir)
    report_checks(run_dir, evaluate)
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
