"""How every benchmark reports: one JSON line on stdout, and the same line in `out` if given;
the machine it ran on, and how loaded it was."""

import json
import os
import platform
import subprocess
from pathlib import Path


def emit(result: dict, out: Path | None = None) -> None:
    line = json.dumps(result)
    print(line)
    if out:
        Path(out).write_text(line + "\n")


def machine() -> dict:
    """The CPU as lscpu names it, its cores, and whether it computes bf16 fast (`auto` then
    picks bf16 or checked) or has AMX."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                 if line.startswith("Model name")), platform.processor() or platform.machine())
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": name, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags,
            "amx": "amx_tile" in flags, "python": platform.python_version()}


def load_average() -> float:
    """The 1-minute load average (other jobs on a shared machine slow every figure)."""
    return round(os.getloadavg()[0], 2)
