"""Plain scikit-learn baselines for the three tables in $NABLA_DATA/tabular, on exactly
the splits nabla uses: for each seed this runs `nabla train` (the same command as
tests/cli_tabular.rs), reads the row indices it wrote to OUT/split.json, and fits on the
same train rows:

  breast_cancer (binary), wine (3 classes): StandardScaler + LogisticRegression
                                             (lbfgs, C=1, max_iter=5000); test accuracy
  diabetes (regression):                    StandardScaler + Ridge(alpha=1); test R^2

It prints nabla's and the baseline's figure per seed and their means over the seeds; the
means are stated in README.md and asserted (with a margin) by tests/cli_tabular.rs.

Run: python3 scripts/baselines/tabular_sklearn.py [path/to/nabla] (default
target/release/nabla), with NABLA_DATA set (default ../shared/data). Needs numpy and
scikit-learn.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

NABLA = sys.argv[1] if len(sys.argv) > 1 else "target/release/nabla"
DATA = os.environ.get("NABLA_DATA", "../shared/data")
SEEDS = [0, 1, 2, 3, 4]
# (file, epochs, metric): the same as tests/cli_tabular.rs.
TABLES = [("breast_cancer", 30, "accuracy"), ("wine", 50, "accuracy"), ("diabetes", 100, "r2")]


def read_table(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    data = np.array(rows[1:], dtype=np.float64)
    return data[:, :-1], data[:, -1]


for name, epochs, metric in TABLES:
    path = os.path.join(DATA, "tabular", name + ".csv")
    x, y = read_table(path)
    ours, theirs = [], []
    for seed in SEEDS:
        with tempfile.TemporaryDirectory() as out:
            res = subprocess.run(
                [NABLA, "--threads", "2", "train", "--dataset", path, "--epochs", str(epochs),
                 "--seed", str(seed), "--out", out, "--json"],
                check=True, capture_output=True, text=True)
            run = json.loads(res.stdout.strip().splitlines()[-1])
            split = json.load(open(os.path.join(out, "split.json")))
        tr, te = split["train"], split["test"]
        if metric == "accuracy":
            model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
            model.fit(x[tr], y[tr])
            theirs.append(accuracy_score(y[te], model.predict(x[te])))
        else:
            model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
            model.fit(x[tr], y[tr])
            theirs.append(r2_score(y[te], model.predict(x[te])))
        ours.append(run["metrics"][metric])
        print(f"{name} seed {seed}: nabla {metric} {ours[-1]:.4f}, sklearn {theirs[-1]:.4f}")
    print(f"{name}: mean over seeds {SEEDS}: nabla {np.mean(ours):.4f}, "
          f"sklearn {np.mean(theirs):.4f}")
