"""The reference's yardstick (price-is-right.md, section 2), one item and one run at a time.

Per item: error = |guess - truth|, sle = (log(truth + 1) - log(guess + 1))^2, and a colour:
green if error < 40 or error/truth < 0.2; else orange if error < 80 or error/truth < 0.4; else red.
A run: mean error ("Error"), RMSLE = sqrt(mean sle), Hits = % green; beside them, as the 2025
edition reports: the 95 % confidence interval of the mean error (normal approximation,
mean +- 1.96 * sd / sqrt(n), sd with n - 1, as the 2025 course computes it), MSE and R^2
(scikit-learn's `mean_squared_error`, `r2_score`).

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
    from sklearn.metrics import (mean_absolute_error, mean_squared_error, r2_score,
                                 root_mean_squared_log_error)

    n = len(scores)
    if n == 0:
        return {"error": None, "error_ci": None, "rmsle": None, "mse": None, "r2": None,
                "hits": None, "n": 0, "invalid": 0, "green": 0, "orange": 0, "red": 0}
    truths, guesses = [s.truth for s in scores], [s.guess for s in scores]
    green = sum(s.colour == GREEN for s in scores)
    return {
        "error": float(mean_absolute_error(truths, guesses)),
        "error_ci": error_interval([s.error for s in scores]),
        "rmsle": float(root_mean_squared_log_error(truths, guesses)),
        "mse": float(mean_squared_error(truths, guesses)),
        "r2": float(r2_score(truths, guesses)) if n > 1 else None,  # undefined for one item
        "hits": green / n * 100,  # as the reference computes it
        "n": n,
        "invalid": sum(not s.valid for s in scores),
        "green": green,
        "orange": sum(s.colour == ORANGE for s in scores),
        "red": sum(s.colour == RED for s in scores),
    }


Z95 = 1.96  # two-sided 95 % quantile of the normal distribution


def error_interval(errors: list[float]) -> list[float]:
    """[low, high]: the 95 % confidence interval of the mean absolute error, by the normal
    approximation mean +- 1.96 * sd / sqrt(n) (sd with n - 1; one item: the interval is the mean)."""
    n = len(errors)
    mean = sum(errors) / n
    sd = math.sqrt(sum((e - mean) ** 2 for e in errors) / (n - 1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n)
    return [mean - half, mean + half]


def interval_text(ci) -> str:
    """"$low-$high" of an interval, or "" (older results have none)."""
    return f"${ci[0]:,.2f}-${ci[1]:,.2f}" if ci else ""


def headline(name: str, summary: dict) -> str:
    """The reference's chart title `<name> Error=$E RMSLE=R Hits=H%`, then the 95 % interval of
    the error, MSE and R^2 where the summary has them."""
    if not summary["n"]:
        return f"{name} (no items scored)"
    text = (f"{name} Error=${summary['error']:,.2f} RMSLE={summary['rmsle']:,.2f} "
            f"Hits={summary['hits']:.1f}%")
    if summary.get("error_ci"):  # the 2025 edition's figures; older results lack them
        text += f" CI95={interval_text(summary['error_ci'])}"
    if summary.get("mse") is not None:
        text += f" MSE={summary['mse']:,.0f}"
    if summary.get("r2") is not None:
        text += f" R²={summary['r2']:.2f}"
    return text
