"""`pricer data`: curate listings into prompts (issue 2)."""


def data() -> None:
    """Curate product listings into the reference's prompts."""
    raise NotImplementedError
