"""The reference's metrics, checked against hand-computed values (price-is-right.md, section 2)."""

import math

import pytest

from pricer.evaluate.metrics import GREEN, ORANGE, RED, colour, headline, score, summarise, valid_guess


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
    assert headline("x", summary) == (f"x Error=$65.00 RMSLE={math.sqrt(sum(sles) / 4):.2f} "
                                      "Hits=50.0%")


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
