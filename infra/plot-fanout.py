"""Plots the fanout scenario of `roomcast bench` output (JSON lines).

usage: python infra/plot-fanout.py BENCH.jsonl OUT.png
(matplotlib: pip install matplotlib into the repo's venv)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, dst: str) -> None:
    series: dict[str, list[tuple[int, float, float]]] = {}
    with open(src) as f:
        for line in f:
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            if d.get("scenario") != "fanout" or "error" in d or d.get("lost"):
                continue
            series.setdefault(d["target"], []).append(
                (d["members"], d["last_delivery_p50_ms"], d["per_recipient_us"])
            )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, points in sorted(series.items()):
        points.sort()
        n = [p[0] for p in points]
        left.plot(n, [p[1] for p in points], marker="o", label=target)
        right.plot(n, [p[2] for p in points], marker="o", label=target)
    left.set(xscale="log", yscale="log", xlabel="room size N", ylabel="time to last delivery, p50 (ms)",
             title="Fan-out of one message")
    right.set(xscale="log", xlabel="room size N", ylabel="cost per recipient (µs)", title="Per-recipient cost")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
