"""The validation slice: items carved from the TRAIN split (never the test split) to fit an
ensemble's weights on, and left out of every model that joins that ensemble (`pricer train
--holdout N`, `pricer baselines --holdout N`, `pricer ensemble --val-size N`, same seed).

The slice can be drawn from the first `pool` items only (`--holdout-pool` / `--val-pool`): where
the train file starts with items like the test split (the reference split's 997 in
amazon-pricer's train.jsonl), the weights are then fitted on test-like items, and every member
must leave out the same slice (same size, seed and pool)."""

import numpy as np

from pricer.errors import PricerError


def carve(items: list, val_size: int, seed: int = 42, pool: int = 0) -> tuple[list, list]:
    """(fit items, validation items): a seeded shuffle of `items` (of their first `pool` if
    given, the others following in file order), the last `val_size` of the shuffled ones held
    out."""
    drawn = pool or len(items)
    if not 1 <= val_size < drawn or drawn > len(items):
        raise PricerError(f"--val-size must be between 1 and {drawn - 1} (the train split has "
                          f"{len(items)} items{f', the pool {pool}' if pool else ''}), got "
                          f"{val_size}" if drawn <= len(items) else
                          f"the validation pool ({pool}) is larger than the train split "
                          f"({len(items)} items)")
    order = np.random.default_rng(seed).permutation(drawn)
    kept = [items[i] for i in order[:-val_size]] + list(items[drawn:])
    return kept, [items[i] for i in order[-val_size:]]


def without_slice(items: list, val_size: int, limit: int | None = None, seed: int = 42,
                  pool: int = 0) -> list:
    """The items a member of an ensemble may learn from: `items` without the validation slice
    `carve(items, val_size, seed, pool)` holds out (none when val_size is 0), the first `limit`
    of them."""
    kept = carve(items, val_size, seed, pool)[0] if val_size else items
    return kept[:limit]
