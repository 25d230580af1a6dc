"""How every benchmark reports: one JSON line on stdout, and the same line in `out` if given."""

import json
from pathlib import Path


def emit(result: dict, out: Path | None = None) -> None:
    line = json.dumps(result)
    print(line)
    if out:
        Path(out).write_text(line + "\n")
