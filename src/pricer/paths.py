"""Where pricer keeps things it builds once and reuses (the converted default model)."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$PRICER_CACHE`, else `~/.cache/pricer`."""
    root = os.environ.get("PRICER_CACHE") or Path.home() / ".cache" / "pricer"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
