"""Fitting a predictor on a bounded train split: one function for `pricer baselines`, `pricer
ensemble` and every command that fits a predictor before using it.

Train prices get the same bounds as curation (`pricer.data.curate` Settings min_price/max_price,
or those in a saved data set's report.json): a train file with negative, zero or $1e12 prices
would otherwise fit a nonsense constant or regression. What is dropped is counted and returned.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from pricer.errors import PricerError


def train_split(items, bounds: tuple[float, float]) -> tuple[list, list[float], dict]:
    """(items, prices, {reason: count dropped}) of the items whose price is within `bounds`."""
    low, high = bounds
    kept, prices, dropped = [], [], Counter()
    for item in items:
        if item.price is None:
            dropped["no price"] += 1
        elif item.price < low:
            dropped[f"price below ${low:g}"] += 1
        elif item.price > high:
            dropped[f"price above ${high:g}"] += 1
        else:
            kept.append(item)
            prices.append(item.price)
    return kept, prices, dict(dropped)


def fit_predictor(predictor, items, bounds: tuple[float, float], progress=None) -> dict:
    """Fit `predictor` on the items within the price bounds; returns what the fit saw
    ({"train_items", "dropped", "seconds"}), to record beside the result."""
    kept, prices, dropped = train_split(items, bounds)
    if not kept:
        raise PricerError(f"{predictor.name}: no train item has a price within "
                          f"${bounds[0]:g}-${bounds[1]:g} ({sum(dropped.values())} dropped)")
    start = time.perf_counter()
    predictor.fit(kept, prices, progress=progress)
    return {"train_items": len(kept), "dropped": dropped,
            "seconds": time.perf_counter() - start}


def prices_from(prices_like) -> list[float] | None:
    """`prices_like` as prices: a file (or saved data set) is read for its items' prices."""
    if isinstance(prices_like, (str, Path)):
        from pricer.data.balance import prices_like as prices_of

        return prices_of(prices_like)
    return prices_like
