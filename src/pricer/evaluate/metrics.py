"""The reference's yardstick (price-is-right.md, section 2), one item and one run at a time.

Per item: error = |guess - truth|, sle = (log(truth + 1) - log(guess + 1))^2, and a colour:
green if error < 40 or error/truth < 0.2; else orange if error < 80 or error/truth < 0.4; else red.
A run: mean error ("Error"), RMSLE = sqrt(mean sle), Hits = % green.

Two things the reference never met and we must handle without crashing:
- a guess that is missing, not a number, NaN, inf or negative is *invalid*: it is scored as a
  guess of 0 and always coloured red (a miss), and counted;
- a truth of 0 or below has no log: the item is skipped, with the reason, and not scored.
"""

import math
from dataclasses import dataclass

GREEN, ORANGE, RED = "green", "orange", "red"


def colour(error: float, truth: float) -> str:
    """The reference's hit colour, boundaries exclusive: exactly $40 or 20% is not green."""
    if error < 40 or error / truth < 0.2:
        return GREEN
    if error < 80 or error / truth < 0.4:
        return ORANGE
    return RED


def valid_guess(guess) -> float | None:
    """`guess` as a float if it is a usable price (finite, >= 0), else None."""
    if guess is None or isinstance(guess, bool):
        return None
    try:
        value = float(guess)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


@dataclass
class Score:
    guess: float  # the guess as scored (0 when invalid)
    truth: float
    error: float
    sle: float
    colour: str
    valid: bool  # False: the predictor gave no usable price


def score(guess, truth: float) -> Score:
    """Score one item. `truth` must be > 0 (callers skip other items)."""
    if not truth > 0:
        raise ValueError(f"truth must be > 0, got {truth}")
    value = valid_guess(guess)
    scored = 0.0 if value is None else value
    error = abs(scored - truth)
    sle = (math.log(truth + 1) - math.log(scored + 1)) ** 2
    return Score(scored, truth, error, sle, RED if value is None else colour(error, truth),
                 value is not None)


def summarise(scores: list[Score]) -> dict:
    """Error (mean absolute, $), RMSLE, Hits (% green), n, and how many guesses were invalid.
    The two averages are scikit-learn's (`mean_absolute_error`, `root_mean_squared_log_error`,
    which uses log(1 + x) as the reference); the hit colours are the reference's, above."""
    from sklearn.metrics import mean_absolute_error, root_mean_squared_log_error

    n = len(scores)
    if n == 0:
        return {"error": None, "rmsle": None, "hits": None, "n": 0, "invalid": 0,
                "green": 0, "orange": 0, "red": 0}
    truths, guesses = [s.truth for s in scores], [s.guess for s in scores]
    green = sum(s.colour == GREEN for s in scores)
    return {
        "error": float(mean_absolute_error(truths, guesses)),
        "rmsle": float(root_mean_squared_log_error(truths, guesses)),
        "hits": green / n * 100,  # as the reference computes it
        "n": n,
        "invalid": sum(not s.valid for s in scores),
        "green": green,
        "orange": sum(s.colour == ORANGE for s in scores),
        "red": sum(s.colour == RED for s in scores),
    }


def headline(name: str, summary: dict) -> str:
    """The reference's chart title: `<name> Error=$E RMSLE=R Hits=H%`."""
    if not summary["n"]:
        return f"{name} (no items scored)"
    return (f"{name} Error=${summary['error']:,.2f} RMSLE={summary['rmsle']:,.2f} "
            f"Hits={summary['hits']:.1f}%")
