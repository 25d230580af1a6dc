"""Where pricer keeps things it builds once and reuses (the converted default model, caches),
and whether the process that is writing a half-done folder still lives."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$PRICER_CACHE`, else `~/.cache/pricer`."""
    root = os.environ.get("PRICER_CACHE") or Path.home() / ".cache" / "pricer"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (a staging folder named after it is then
    still being written, not a leftover of a killed run)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True
