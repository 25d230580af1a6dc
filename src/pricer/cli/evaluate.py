"""`pricer eval`, `pricer baselines`, `pricer leaderboard` (issue 3)."""


def eval_command() -> None:
    """Evaluate a predictor on the first N test items."""
    raise NotImplementedError


def baselines() -> None:
    """Train and evaluate the classical baselines."""
    raise NotImplementedError


def leaderboard() -> None:
    """Gather every result into one table and chart."""
    raise NotImplementedError
