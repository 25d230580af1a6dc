"""The simplest predictors: a constant, the reference's seeded random guesser, and a file of guesses.

They need no model, so they also serve to check the harness against the reference's published
figures (constant 220.46 -> $145.51; random seed 42 -> $340.74 on the reference's 250 items).
"""

import csv
import random
from pathlib import Path

from pricer.errors import PricerError


class ConstantPredictor:
    """Always the same price: `value`, or the mean train price once `fit` has seen the train split."""

    name = "constant"

    def __init__(self, value: float | None = None):
        self.value = None if value is None else float(value)

    def fit(self, items) -> "ConstantPredictor":
        if self.value is None:
            prices = [item.price for item in items if item.price is not None]
            if not prices:
                raise PricerError("constant: the train split has no prices to average")
            self.value = sum(prices) / len(prices)
        return self

    def settings(self) -> dict:
        return {"value": self.value}

    def predict(self, prompts: list[str]) -> list[float | None]:
        if self.value is None:
            raise PricerError("constant: give --value V or a train split (--train) to take its mean")
        return [self.value] * len(prompts)


class RandomPredictor:
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

    def predict(self, prompts: list[str]) -> list[float | None]:
        return [float(self.rng.randrange(1, 1000)) for _ in prompts]


def read_guesses(path: str | Path) -> dict[str, float | None]:
    """`id,guess` rows of a CSV file -> {id: guess}; a guess that is not a number becomes None."""
    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: no such guesses file")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"id", "guess"} <= set(reader.fieldnames):
            raise PricerError(f"{path}: needs the columns id,guess (has: {reader.fieldnames})")
        guesses = {}
        for row in reader:
            try:
                guesses[str(row["id"]).strip()] = float(row["guess"])
            except (TypeError, ValueError):
                guesses[str(row["id"]).strip()] = None
    return guesses


class GuessesPredictor:
    """Guesses made elsewhere (a person, another tool), read from `id,guess` CSV.

    The harness calls `attach(items)` so that each prompt can be matched to its item's id; an item
    without a guess in the file gets None (scored as a miss, and counted).
    """

    name = "guesses"

    def __init__(self, guesses: str | Path):
        self.path = str(guesses)
        self.guesses = read_guesses(guesses)
        self.ids: dict[str, str] = {}

    def attach(self, items) -> None:
        self.ids = {item.prompt: item.id for item in items}
        if items and not any(item.id in self.guesses for item in items):
            raise PricerError(f"{self.path}: none of its ids match the data's ids "
                              f"(e.g. data has '{items[0].id}')")

    def settings(self) -> dict:
        return {"guesses": self.path, "rows": len(self.guesses)}

    def predict(self, prompts: list[str]) -> list[float | None]:
        return [self.guesses.get(self.ids.get(prompt, ""), None) for prompt in prompts]
