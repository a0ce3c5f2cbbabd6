#!/usr/bin/env python3
"""The expected cost of the gradient all-reduce at N ranks (BENCHMARKS.md, "Data-parallel
training over MPI"), from the gradient bytes `nabla bench distributed --gradient-bytes
--json` prints (one JSON object per net, read from stdin).

Ring all-reduce of B bytes over N ranks in k buckets: each rank sends and receives
2(N-1)/N * B bytes, in 2(N-1) steps per bucket, so
    T(N) = 2(N-1)/N * B / bandwidth + 2(N-1) * k * latency.
Efficiency of a step without overlap: compute / (compute + T(N)).

Usage: nabla bench distributed --gradient-bytes --json | scripts/mpi_scaling_model.py \
           [--bandwidth GB/s] [--latency us] [--step-ms MS --model NAME]
"""
import argparse
import json
import math
import sys

BUCKET = 4 << 20  # DEFAULT_BUCKET_BYTES in src/distributed/buckets.rs


def allreduce_ms(nbytes, ranks, gbps, latency_us):
    k = max(1, math.ceil(nbytes / BUCKET))
    wire = 2 * (ranks - 1) / ranks * nbytes / (gbps * 1e9)
    return 1e3 * (wire + 2 * (ranks - 1) * k * latency_us * 1e-6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bandwidth", type=float, default=1.25, help="GB/s per link (10 GbE: 1.25)")
    ap.add_argument("--latency", type=float, default=50.0, help="microseconds per message")
    ap.add_argument("--model", default="keras-cnn")
    ap.add_argument("--step-ms", type=float, help="measured one-rank step time of --model")
    ap.add_argument("--batch", type=int, default=128, help="global batch of --step-ms")
    a = ap.parse_args()
    rows = [json.loads(line) for line in sys.stdin if line.strip()]
    print(f"bandwidth {a.bandwidth} GB/s, latency {a.latency} us, buckets of {BUCKET >> 20} MB")
    print(f"{'model':<16}{'grad MB':>10}{'T(2) ms':>10}{'T(8) ms':>10}{'T(64) ms':>10}")
    for r in rows:
        b = r["gradient_bytes"]
        t = [allreduce_ms(b, n, a.bandwidth, a.latency) for n in (2, 8, 64)]
        print(f"{r['model']:<16}{b / 1e6:>10.2f}" + "".join(f"{x:>10.2f}" for x in t))
    if a.step_ms:
        b = next(r["gradient_bytes"] for r in rows if r["model"] == a.model)
        print(f"\n{a.model}: one-rank step {a.step_ms} ms at global batch {a.batch}")
        for n in (2, 8, 64):
            t = allreduce_ms(b, n, a.bandwidth, a.latency)
            strong = (a.step_ms / n) / (a.step_ms / n + t)
            weak = a.step_ms / (a.step_ms + t)
            print(f"  {n:>2} ranks: all-reduce {t:.2f} ms; efficiency {strong:.1%} with the "
                  f"global batch fixed ({a.batch // n} per rank), {weak:.1%} with "
                  f"--batch-size-per-rank {a.batch}")


if __name__ == "__main__":
    main()
