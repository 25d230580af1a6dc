"""The simplest predictors: a constant, the reference's seeded random guesser, and a file of guesses.

They need no model, so they also serve to check the harness against the reference's published
figures (constant 220.46 -> $145.51; random seed 42 -> $340.74 on the reference's 250 items).
"""

import csv
import math
import random
from collections import Counter
from pathlib import Path

from pricer.data.items import as_items
from pricer.errors import PricerError, reading
from pricer.predict.base import Predictor


class ConstantPredictor(Predictor):
    """Always the same price: `value`, or the mean train price once `fit` has seen the train split."""

    name = "constant"

    def __init__(self, value: float | None = None):
        if value is not None and not (math.isfinite(float(value)) and float(value) >= 0):
            raise PricerError(f"constant: the value must be a finite price >= 0, got {value}")
        self.value = None if value is None else float(value)
        self.needs_fit = self.value is None  # without a value, it learns the train mean

    def fit(self, items, prices, progress=None) -> "ConstantPredictor":
        prices = [p for p in prices if p is not None]
        if not prices:
            raise PricerError("constant: the train split has no prices to average")
        self.value = sum(prices) / len(prices)
        self.needs_fit = False
        return self

    def settings(self) -> dict:
        return {"value": self.value}

    def predict(self, items) -> list[float | None]:
        if self.value is None:
            raise PricerError("constant: give --opt value=V or a train split (--train) to take its mean")
        return [self.value] * len(items)


class RandomPredictor(Predictor):
    """The reference's random pricer: seed once, then one `randrange(1, 1000)` per item, in order.

    `random.Random(seed)` draws exactly what `random.seed(seed)` + `random.randrange` draw, without
    touching the global generator. The stream runs on across calls, as in the reference's loop.
    """

    name = "random"

    def __init__(self, seed: int = 42):
        self.seed = int(seed)
        self.rng = random.Random(self.seed)

    def settings(self) -> dict:
        return {"seed": self.seed}

    def predict(self, items) -> list[float | None]:
        return [float(self.rng.randrange(1, 1000)) for _ in items]


def read_guesses(path: str | Path) -> dict[str, float | None]:
    """`id,guess` rows of a CSV file -> {id: guess}; a guess that is not a number becomes None.
    An id given twice is refused (which guess counts would be a silent choice)."""
    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: no such guesses file")
    with reading(path), open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"id", "guess"} <= set(reader.fieldnames):
            raise PricerError(f"{path}: needs the columns id,guess (has: {reader.fieldnames})")
        rows = [(str(row["id"]).strip(), row["guess"]) for row in reader]
    twice = [i for i, n in Counter(i for i, _ in rows).items() if n > 1]
    if twice:
        raise PricerError(f"{path}: {len(twice)} id(s) appear more than once (e.g. '{twice[0]}'); "
                          "keep one guess per id")
    guesses = {}
    for rid, guess in rows:
        try:
            guesses[rid] = float(guess)
        except (TypeError, ValueError):
            guesses[rid] = None
    return guesses


class GuessesPredictor(Predictor):
    """Guesses made elsewhere (a person, another tool), read from `id,guess` CSV.

    Each item is matched by its id; an item without a guess in the file gets None (scored as a
    miss, and counted). When none of the first items asked for has a guess, the file is for
    other data: one clear error.
    """

    name = "guesses"

    def __init__(self, guesses: Path | None = None):
        if guesses is None:
            raise PricerError("guesses: give the CSV file with --guesses FILE.csv (columns id,guess)")
        self.path = str(guesses)
        self.guesses = read_guesses(guesses)
        self.checked = False

    def settings(self) -> dict:
        return {"guesses": self.path, "rows": len(self.guesses)}

    def predict(self, items) -> list[float | None]:
        items = as_items(items)
        if items and not self.checked:
            self.checked = True
            if not any(item.id in self.guesses for item in items):
                raise PricerError(f"{self.path}: none of its ids match the data's ids "
                                  f"(e.g. data has '{items[0].id}')")
        return [self.guesses.get(item.id) for item in items]
