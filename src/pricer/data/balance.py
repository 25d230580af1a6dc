"""Balancing and the train/test split, as the reference (price-is-right.md, section 1).

Balance: bucket items by round(price) for $1..$999 (and beyond, when the price bounds allow);
keep every item from $240 up and every bucket of at most `bucket_cap` items; sample larger
buckets down to the cap, weight 1 for Automotive and 5 for the others (numpy seed 42).
Split: random.seed(42), shuffle, train = first N, test = next M (skipping texts already in train).

Small data: the reference's cap (1,200 a bucket) was set for 400,000 + 2,000 items. Unless a cap
is given, it scales with the requested size: cap = ceil(1200 * (N + M) / 402,000), so the share
of cheap items stays the reference's (N + M = 402,000 gives exactly 1,200).
"""

import math
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from pricer.errors import PricerError

REFERENCE_SIZE = 400_000 + 2_000
# price bands (dollars) for weighting items at training time: the error-by-band chart's bands
BANDS = (0, 10, 25, 50, 100, 200, 400, math.inf)


@dataclass
class BalanceSettings:
    train_size: int = 400_000
    test_size: int = 2_000
    bucket_cap: int | None = None       # None: 1200 scaled to train_size + test_size
    reference_cap: int = 1200
    keep_from: float = 240              # buckets at or above this price are kept whole
    weights: dict = field(default_factory=lambda: {"Automotive": 1})
    default_weight: float = 5
    seed: int = 42
    balance: bool = True

    def cap(self) -> int:
        if self.bucket_cap is not None:
            return self.bucket_cap
        total = self.train_size + self.test_size
        return max(1, math.ceil(self.reference_cap * total / REFERENCE_SIZE))

    def to_dict(self) -> dict:
        return asdict(self) | {"effective_cap": self.cap()}


def balance(items: list, settings: BalanceSettings) -> list:
    """The reference's balanced sample (items need .price and .category), bucket order."""
    kept = balance_numbers([i.price for i in items], [i.category for i in items], settings)
    return [items[n] for n in kept]


def balance_numbers(prices, categories, settings: BalanceSettings) -> list[int]:
    """`balance` on columns: the numbers (places in `prices`) of the items kept, in bucket
    order. Only numbers are held, so it balances items that are kept on disk (`spool`)."""
    if not settings.balance:
        return list(range(len(prices)))
    slots = defaultdict(list)
    for n, price in enumerate(prices):
        slots[round(price)].append(n)
    rng = np.random.RandomState(settings.seed)  # same stream as np.random.seed(42)
    cap, sample = settings.cap(), []
    for price in sorted(p for p in slots if p >= 1):  # the reference: range(1, 1000)
        slot = slots[price]
        if price >= settings.keep_from or len(slot) <= cap:
            sample.extend(slot)
        else:
            weights = np.array([settings.weights.get(categories[n], settings.default_weight)
                                for n in slot], dtype=float)
            chosen = rng.choice(len(slot), size=cap, replace=False, p=weights / weights.sum())
            sample.extend(slot[i] for i in chosen)
    return sample


def split_sizes(total: int, train_size: int, test_size: int) -> tuple[int, int]:
    """(train, test) counts. Enough items: the requested sizes. Too few: the test keeps its share
    of the request (at least 1 item when there are 2 or more and a test set is wanted)."""
    if total >= train_size + test_size:
        return train_size, test_size
    test = min(test_size, round(total * test_size / max(train_size + test_size, 1)))
    if test_size and total >= 2:
        test = max(test, 1)
    return min(train_size, total - test), test


def split(items: list, settings: BalanceSettings) -> tuple[list, list]:
    """random.seed(seed); shuffle; first N train, next M test (a shuffled copy; input untouched).

    One addition to the reference: a test item whose text is also in train (a listing that
    appears twice in the input) is passed over for the next one, so the test never scores
    listings the model trained on. Without such duplicates the split is the reference's."""
    train, test = split_numbers([item.text for item in items], settings)
    return [items[n] for n in train], [items[n] for n in test]


def split_numbers(keys, settings: BalanceSettings) -> tuple[list[int], list[int]]:
    """`split` on the items' texts, or any key equal exactly when the texts are (a digest):
    the numbers (places in `keys`) of train and test. Shuffling the numbers 0..n-1 gives the
    same order as shuffling the items (`shuffle` draws only from the length)."""
    order = list(range(len(keys)))
    random.Random(settings.seed).shuffle(order)  # == random.seed(42); random.shuffle(sample)
    n_train, n_test = split_sizes(len(order), settings.train_size, settings.test_size)
    train = order[:n_train]
    in_train = {keys[n] for n in train}
    test = [n for n in order[n_train:] if keys[n] not in in_train][:n_test]
    return train, test


def band_weights(prices) -> np.ndarray:
    """A weight per item, 1 / (share of its price band), scaled to mean 1: every band weighs the
    same however many cheap items a train split holds (`pricer train --balance-prices`, `pricer
    ensemble --balance-prices`). Curation balances by sampling; this balances by weighting."""
    prices = np.asarray(prices, dtype=float)
    band = np.digitize(prices, BANDS[1:-1])
    counts = np.bincount(band, minlength=len(BANDS) - 1)
    weights = 1.0 / counts[band]
    return weights * len(prices) / weights.sum()


def shift_weights(prices, target_prices) -> np.ndarray:
    """A weight per item, (share of its price band among `target_prices`) / (share among
    `prices`), scaled to mean 1: the items then weigh like a sample with the target's price mix
    (importance weights for a prior shift, e.g. a cheap train split and test-like items).
    A band the target has but the items lack cannot be weighted up; one the items have and the
    target lacks gets weight 0."""
    prices, target = np.asarray(prices, dtype=float), np.asarray(target_prices, dtype=float)
    n_bands = len(BANDS) - 1
    band = np.digitize(prices, BANDS[1:-1])
    have = np.bincount(band, minlength=n_bands) / len(prices)
    want = np.bincount(np.digitize(target, BANDS[1:-1]), minlength=n_bands) / len(target)
    weights = want[band] / have[band]
    return weights * len(prices) / weights.sum()


def item_weights(prices, balance: bool = False, like=None) -> np.ndarray:
    """The training weights every learner uses: ones; with `balance` band_weights (every price
    band counts the same); with `like` (prices of items like those to be priced)
    shift_weights towards their price mix. Not both."""
    if balance and like is not None:
        raise PricerError("choose one of --balance-prices and --prices-like")
    if balance:
        return band_weights(prices)
    if like is not None:
        return shift_weights(prices, like)
    return np.ones(len(prices))


def prices_like(source) -> list[float]:
    """The prices of a file of items (or a saved data set's train split), for `--prices-like`:
    only their prices are read, to weigh other items like them."""
    from pricer.data.items import read_items

    like = [i.price for i in read_items(source, split="train") if i.price and i.price > 0]
    if not like:
        raise PricerError(f"{source}: no priced items to weigh like")
    return like


def weighted_name(kind: str, balance: bool = False, like=None) -> str:
    """KIND, KIND-balanced (every price band weighs the same) or KIND-shifted (weighted towards
    --prices-like's price mix): the name a weighted learner is saved and ranked under."""
    return f"{kind}-balanced" if balance else f"{kind}-shifted" if like else kind
