"""The validation slice: items carved from the TRAIN split (never the test split) to fit an
ensemble's weights on, and left out of every model that joins that ensemble (`pricer train
--holdout N`, `pricer baselines --holdout N`, `pricer ensemble --val-size N`, same seed)."""

import numpy as np

from pricer.errors import PricerError


def carve(items: list, val_size: int, seed: int = 42) -> tuple[list, list]:
    """(fit items, validation items): a seeded shuffle of `items`, the last `val_size` held out."""
    if not 1 <= val_size < len(items):
        raise PricerError(f"--val-size must be between 1 and {len(items) - 1} (the train split "
                          f"has {len(items)} items), got {val_size}")
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order[:-val_size]], [items[i] for i in order[-val_size:]]


def without_slice(items: list, val_size: int, limit: int | None = None, seed: int = 42) -> list:
    """The items a member of an ensemble may learn from: `items` without the validation slice
    `carve(items, val_size, seed)` holds out (none when val_size is 0), the first `limit` of them."""
    kept = carve(items, val_size, seed)[0] if val_size else items
    return kept[:limit]
