"""`pricer predict` (issue 6)."""


def predict() -> None:
    """Predict prices with a (fine-tuned) model."""
    raise NotImplementedError
