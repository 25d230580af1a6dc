"""The reference's metrics, checked against hand-computed values (price-is-right.md, section 2)."""

import math

import pytest

from pricer.predict.metrics import GREEN, ORANGE, RED, colour, headline, score, summarise, valid_guess


@pytest.mark.parametrize("guess, truth, expected", [
    (60.01, 100, GREEN),    # error 39.99 < $40
    (60.0, 100, ORANGE),    # error exactly $40 (and 40%): not green; < $80 -> orange
    (359.99, 300, GREEN),   # error 59.99 but 19.997% < 20%
    (360.0, 300, ORANGE),   # exactly 20%: not green; error 60 < $80 -> orange
    (229.99, 150, ORANGE),  # error 79.99 < $80 (53%)
    (230.0, 150, RED),      # exactly $80 and 53%: red
    (349.99, 250, ORANGE),  # error 99.99, 39.996% < 40%
    (350.0, 250, RED),      # exactly 40% and $100: red
    (1000.0, 999.0, GREEN), # $1 off
])
def test_colour_boundaries(guess, truth, expected):
    assert score(guess, truth).colour == expected
    assert colour(abs(guess - truth), truth) == expected


def test_error_and_sle_by_hand():
    s = score(99, 199)
    assert s.error == 100
    assert s.sle == pytest.approx(math.log(2) ** 2)  # (log 200 - log 100)^2
    assert s.colour == RED  # $100 >= $80 and 100/199 = 50% >= 40%


def test_summary_by_hand():
    scores = [score(100, 100), score(300, 100), score(150, 120), score(None, 30)]
    # errors: 0, 200, 30, 30 (invalid -> guess 0) ; colours: green, red, green, red (invalid)
    summary = summarise(scores)
    assert summary["error"] == pytest.approx((0 + 200 + 30 + 30) / 4)
    sles = [0, math.log(101 / 301) ** 2, math.log(121 / 151) ** 2, math.log(31) ** 2]
    assert summary["rmsle"] == pytest.approx(math.sqrt(sum(sles) / 4))
    assert summary["hits"] == 50.0
    assert (summary["n"], summary["invalid"], summary["green"], summary["red"]) == (4, 1, 2, 2)
    # the 2025 edition's figures: 95 % interval of the error (normal approximation), MSE, R^2
    errors, truths = [0, 200, 30, 30], [100, 100, 120, 30]
    sd = math.sqrt(sum((e - 65) ** 2 for e in errors) / 3)
    assert summary["error_ci"] == pytest.approx([65 - 1.96 * sd / 2, 65 + 1.96 * sd / 2])
    assert summary["mse"] == pytest.approx(sum(e * e for e in errors) / 4)
    mean_truth = sum(truths) / 4
    r2 = 1 - sum(e * e for e in errors) / sum((t - mean_truth) ** 2 for t in truths)
    assert summary["r2"] == pytest.approx(r2)
    low, high = summary["error_ci"]
    assert headline("x", summary) == (f"x Error=$65.00 RMSLE={math.sqrt(sum(sles) / 4):.2f} "
                                      f"Hits=50.0% CI95=${low:,.2f}-${high:,.2f} "
                                      f"MSE={summary['mse']:,.0f} R²={r2:.2f}")


def test_old_summaries_without_interval_still_make_a_headline():
    old = {"error": 10.0, "rmsle": 0.5, "hits": 40.0, "n": 3}
    assert headline("old", old) == "old Error=$10.00 RMSLE=0.50 Hits=40.0%"


def test_one_item_interval_and_r2():
    summary = summarise([score(90, 100)])
    assert summary["error_ci"] == [10.0, 10.0] and summary["r2"] is None


@pytest.mark.parametrize("bad", [None, "abc", float("nan"), float("inf"), -float("inf"), -5.0,
                                 [], True])
def test_invalid_guesses_are_misses_at_zero(bad):
    s = score(bad, 30)
    assert valid_guess(bad) is None
    assert (s.guess, s.error, s.valid) == (0.0, 30.0, False)
    assert s.colour == RED  # $30 off would be green, but no usable guess is never a hit
    assert s.sle == pytest.approx(math.log(31) ** 2)


def test_numbers_in_strings_and_zero_are_valid():
    assert valid_guess("12.5") == 12.5
    assert score(0, 10).colour == GREEN and score(0, 10).valid


def test_truth_must_be_positive_and_empty_summary():
    with pytest.raises(ValueError):
        score(10, 0)
    assert summarise([])["n"] == 0
