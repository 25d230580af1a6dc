"""`pricer demo`: the quick start's main job on the offline default."""


def demo() -> None:
    """Run the whole loop on the offline default (demo catalog, SmolLM2-135M)."""
    raise NotImplementedError
