"""`pricer serve`: the HTTP API and web page (placeholder until the server lands)."""


def serve() -> None:
    """Serve a predictor over HTTP."""
