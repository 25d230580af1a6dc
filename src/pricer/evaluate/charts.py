"""Charts a user would rather look at than read (matplotlib, Agg; each function writes one PNG).

- `scatter`: truth vs estimate on log-log axes in the reference's hit colours, with a legend and
  the y=x line (linear axes flatten a bad model's guesses onto y=0);
- `bands`: mean absolute error per price band ($0-50 ... $1000+), with the item count per band;
- `loss_curve`: the training loss of a run folder (newest checkpoint-*/trainer_state.json, else
  run_card.json's `log_history` or `losses` when it has them);
- `price_histogram`: train vs test prices of a data set on a log x axis.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from pricer.errors import PricerError, reading
from pricer.predict.metrics import GREEN, ORANGE, RED
from pricer.models.run import CARD, Run

HIT_COLOURS = {GREEN: ("green", "hit: within $40 or 20%"),
               ORANGE: ("orange", "near: within $80 or 40%"),
               RED: ("red", "miss")}
BANDS = (0, 50, 100, 250, 500, 1000)  # lower edges; the last band is open ($1000+)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    _pyplot().close(fig)
    return path


def scatter(rows: list[dict], title: str, path: str | Path) -> Path:
    """Truth (x) vs scored estimate (y), log-log, one colour per hit class, and y=x. Estimates of
    $0 (and invalid guesses, scored as 0) are drawn at $0.50 on the floor of the chart."""
    plt = _pyplot()
    floor = 0.5
    values = [r["truth"] for r in rows] + [max(r["scored_guess"], floor) for r in rows]
    low, high = min(values + [1.0]) / 1.5, max(values + [1000.0]) * 1.5
    fig, ax = plt.subplots(figsize=(10, 8))
    ax.plot([low, high], [low, high], color="deepskyblue", lw=2, alpha=0.6, label="estimate = truth")
    if any(r["scored_guess"] < floor for r in rows):
        ax.axhline(floor, color="grey", lw=0.8, ls=":",
                   label=f"estimate $0 or none, drawn at ${floor:.2f}")
    for key, (colour, label) in HIT_COLOURS.items():
        mine = [r for r in rows if r["colour"] == key]
        ax.scatter([r["truth"] for r in mine], [max(r["scored_guess"], floor) for r in mine],
                   s=10, c=colour, alpha=0.7, label=f"{label} ({len(mine)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("ground truth ($, log scale)")
    ax.set_ylabel("model estimate ($, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def band_of(price: float) -> str:
    """The price band label of a truth, e.g. "$100-250" or "$1000+"."""
    for low, high in zip(BANDS, BANDS[1:]):
        if price < high:
            return f"${low}-{high}"
    return f"${BANDS[-1]}+"


def band_errors(rows: list[dict]) -> list[tuple[str, float | None, int]]:
    """[(band, mean absolute error or None, items)] for every band, in price order."""
    labels = [band_of(low) for low in BANDS]
    errors: dict[str, list[float]] = {label: [] for label in labels}
    for r in rows:
        errors[band_of(r["truth"])].append(r["error"])
    return [(label, sum(e) / len(e) if e else None, len(e)) for label, e in errors.items()]


def bands(rows: list[dict], title: str, path: str | Path) -> Path:
    """Bars of the mean absolute error per price band of the truth, with n per band."""
    plt = _pyplot()
    found = band_errors(rows)
    fig, ax = plt.subplots(figsize=(9, 5))
    heights = [e or 0.0 for _, e, _ in found]
    ax.bar([label for label, _, _ in found], heights, color="steelblue")
    for x, (_, error, n) in enumerate(found):
        ax.text(x, error or 0.0, f"${error:,.0f}\nn={n}" if error is not None else "n=0",
                ha="center", va="bottom", fontsize=9)
    ax.set_ylim(0, max(heights + [1.0]) * 1.2)
    ax.set_xlabel("true price band")
    ax.set_ylabel("mean absolute error ($)")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _step(path: Path) -> int:
    match = re.search(r"(\d+)$", path.name)
    return int(match.group(1)) if match else -1


def run_losses(run: str | Path) -> list[tuple[float, float]]:
    """[(step, loss)] of a training run folder: the newest checkpoint-*/trainer_state.json's
    `log_history`, else run_card.json's `log_history` or `losses` (a list of numbers)."""
    run = Path(run)
    if not run.is_dir():
        raise PricerError(f"{run}: no such run folder")
    states = sorted(run.glob("checkpoint-*/trainer_state.json"), key=lambda p: _step(p.parent))
    card = Run(run).path(CARD)
    for source in ([states[-1]] if states else []) + ([card] if card.is_file() else []):
        with reading(source):
            data = json.loads(source.read_text())
        history = data.get("log_history") if isinstance(data, dict) else None
        if history:
            points = [(float(h.get("step", i + 1)), float(h["loss"])) for i, h in enumerate(history)
                      if isinstance(h, dict) and isinstance(h.get("loss"), (int, float))]
            if points:
                return points
        losses = data.get("losses") if isinstance(data, dict) else None
        if losses:
            return [(float(i + 1), float(v)) for i, v in enumerate(losses)]
    raise PricerError(f"{run}: no training losses found (no checkpoint-*/trainer_state.json with "
                      "a log_history, nor losses in run_card.json)")


def loss_curve(run: str | Path, path: str | Path, title: str | None = None) -> Path:
    """The training loss by step of a run folder (see `run_losses`)."""
    plt = _pyplot()
    points = run_losses(run)
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.plot([s for s, _ in points], [v for _, v in points], marker="o" if len(points) < 30 else None,
            ms=3, color="steelblue")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"training loss of {Path(run).name} ({len(points)} logged steps, "
                          f"last {points[-1][1]:.4g})", fontsize=10)
    return _save(fig, path)


def price_histogram(train: list[float], test: list[float], path: str | Path,
                    title: str = "prices") -> Path:
    """Train vs test price distributions (share of each split's items per bin, so splits of
    different sizes compare) on log-spaced bins and a log x axis."""
    import numpy as np

    plt = _pyplot()
    train = [p for p in train if p is not None and p > 0]
    test = [p for p in test if p is not None and p > 0]
    if not train and not test:
        raise PricerError("no positive prices to draw")
    everything = train + test
    edges = np.logspace(math.log10(min(everything)), math.log10(max(everything)) + 1e-9, 40)
    fig, ax = plt.subplots(figsize=(10, 5))
    for prices, colour, label in ((train, "steelblue", "train"), (test, "darkorange", "test")):
        if prices:
            ax.hist(prices, bins=edges, weights=[100 / len(prices)] * len(prices), alpha=0.5,
                    color=colour,
                    label=f"{label}: {len(prices):,} items, mean ${sum(prices) / len(prices):,.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("price ($, log scale)")
    ax.set_ylabel("% of the split's items")
    ax.legend()
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
