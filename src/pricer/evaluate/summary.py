"""Leaderboard summaries: one small JSON file per leaderboard row, the figures of one evaluation
without its per-item rows (those copy test items and stay out of the repository). The boards
that `pricer leaderboard --summaries DIR` prints are read from them; `docs/measurements/accuracy/`
holds one for every row of the docs/accuracy.md leaderboard.

A summary file (FORMAT), every key present, null where a figure is not known:

    {"format": "pricer-summary/1",
     "predictor": "constant", "settings": {"value": 108.29},
     "data": {"name": "amazon-pricer/test.jsonl", "fingerprint": "9243d1477f3481f1"},
     "n": 748, "error": 146.28, "error_ci95": [135.25, 157.30], "rmsle": 1.094,
     "hits_pct": 21.9, "mse": 45029.0, "r2": -0.395,
     "command": "pricer eval ...", "date": "2026-11-30",
     "machine": "2-core AMD EPYC with AVX512-BF16, no GPU", "source": "measured by pricer eval"}

`n` is the number of items scored; the fingerprint is `pricer.data.items.fingerprint` of the
items evaluated (null when not known, then the name identifies the data). Boards never mix data:
summaries are grouped by (fingerprint, else name; n), one board each.
"""

import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from pricer.errors import PricerError, writing

FORMAT = "pricer-summary/1"
FIELDS = ("format", "predictor", "settings", "data", "n", "error", "error_ci95", "rmsle",
          "hits_pct", "mse", "r2", "command", "date", "machine", "source")
MEASURED = "measured by pricer eval (the per-item results stay in the --results folder, not here)"


def data_name(data: str | Path) -> str:
    """The name a summary gives its data: a file as `folder/file` (e.g. amazon-pricer/test.jsonl),
    a saved data set as `folder (test split)`."""
    path = Path(data)
    if path.is_dir():
        return f"{path.resolve().name} (test split)"
    return f"{path.resolve().parent.name}/{path.name}"


def machine() -> str:
    """This machine as the summaries name it: cores, the CPU's model name as lscpu says, whether
    it has AVX512-BF16 (pricer's `auto` precision then computes in bf16), and the GPU: torch's
    first CUDA device when the predictor imported torch, else "no GPU used" (torch is not
    imported for this; a predictor without torch uses no GPU)."""
    name = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        name = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                     if line.startswith("Model name")), "")
    except (OSError, subprocess.SubprocessError):
        lscpu = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    if not name:
        name = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                     if line.startswith("model name")), "") or platform.processor() or platform.machine()
    bf16 = "avx512_bf16" in cpuinfo or "avx512_bf16" in lscpu
    text = f"{os.cpu_count()}-core {name} {'with' if bf16 else 'without'} AVX512-BF16"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"{text}, GPU {torch.cuda.get_device_name(0)}"
    return f"{text}, no GPU" if torch is not None else f"{text}, no GPU used"


def _plain(value):
    """A JSON-safe copy of settings: dicts, lists, text, booleans and finite numbers as they are,
    anything else (a path, NaN) as its text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) or hasattr(value, "item"):  # numpy scalars too
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, (int, float)) and math.isfinite(number):
            return number
    return str(value)


def summary_of(result: dict, data: str, *, command: str | None = None,
               source: str = MEASURED, machine_name: str | None = None) -> dict:
    """The summary of a harness result (`pricer.evaluate.harness.evaluate`): its figures, its data
    (`data` is the test file or data set it scored), the command, the date it was made and the
    machine; never its per-item rows."""
    if not result.get("n"):
        raise PricerError(f"{result.get('predictor', '?')}: no items scored, nothing to summarise")
    created = result.get("created") or datetime.datetime.now(datetime.timezone.utc).isoformat()
    ci = result.get("error_ci")
    return {
        "format": FORMAT,
        "predictor": result["predictor"],
        "settings": _plain(result.get("settings") or {}),
        "data": {"name": data_name(data), "fingerprint": (result.get("data") or {}).get("fingerprint")},
        "n": result["n"],
        "error": result["error"],
        "error_ci95": [ci[0], ci[1]] if ci else None,
        "rmsle": result.get("rmsle"),
        "hits_pct": result.get("hits"),
        "mse": result.get("mse"),
        "r2": result.get("r2"),
        "command": command,
        "date": created[:10],
        "machine": machine_name or machine(),
        "source": source,
    }


def slug(predictor: str) -> str:
    """The file name a summary of `predictor` gets (without .json)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", predictor).strip("-._").lower() or "predictor"


def write_summary(summary: dict, folder: str | Path) -> tuple[Path, bool]:
    """Write `summary` to FOLDER/<slug of its predictor>.json; (path, whether it replaced a file).
    Checked as the reader checks it first, so that nothing unreadable is written."""
    check(summary, "the summary")
    path = Path(folder) / f"{slug(summary['predictor'])}.json"
    if Path(folder).exists() and not Path(folder).is_dir():
        raise PricerError(f"{folder}: is a file, expected a folder for summaries")
    replaced = path.exists()
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return path, replaced


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check(summary, where: str) -> dict:
    """`summary` if it is a well-formed summary, else a PricerError naming `where` and the fault."""
    def fault(text):
        return PricerError(f"{where}: not a leaderboard summary ({text})")

    if not isinstance(summary, dict):
        raise fault(f"a JSON {type(summary).__name__}, expected an object")
    missing = [k for k in FIELDS if k not in summary]
    if missing:
        raise fault(f"missing {', '.join(missing)}")
    if "items" in summary:
        raise fault("it holds per-item rows: they copy test items, keep them out of summaries")
    if summary["format"] != FORMAT:
        raise fault(f"format {summary['format']!r}, expected {FORMAT!r}")
    if not isinstance(summary["predictor"], str) or not summary["predictor"].strip():
        raise fault("predictor must be a name")
    if not isinstance(summary["settings"], dict):
        raise fault("settings must be an object")
    data = summary["data"]
    if not (isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"]
            and (data.get("fingerprint") is None or isinstance(data["fingerprint"], str))):
        raise fault('data must be {"name": ..., "fingerprint": ... or null}')
    if not (isinstance(summary["n"], int) and not isinstance(summary["n"], bool) and summary["n"] > 0):
        raise fault(f"n must be a whole number above 0, got {summary['n']!r}")
    if not (_number(summary["error"]) and summary["error"] >= 0):
        raise fault(f"error must be a number >= 0, got {summary['error']!r}")
    for key in ("rmsle", "hits_pct", "mse", "r2"):
        if summary[key] is not None and not _number(summary[key]):
            raise fault(f"{key} must be a number or null, got {summary[key]!r}")
    ci = summary["error_ci95"]
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(map(_number, ci))
                               and ci[0] <= summary["error"] <= ci[1]):
        raise fault(f"error_ci95 must be [low, high] around the error, or null, got {ci!r}")
    for key in ("date", "machine", "source"):
        if not isinstance(summary[key], str) or not summary[key].strip():
            raise fault(f"{key} must be text")
    if summary["command"] is not None and not isinstance(summary["command"], str):
        raise fault("command must be text or null")
    return summary


def read_summaries(folder: str | Path) -> list[dict]:
    """Every summary file (`*.json`) in `folder`, each with its "file"; a PricerError naming the
    first file that is not a well-formed summary (a committed board should not skip rows)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PricerError(f"{folder}: no such folder of summaries")
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            summary = json.loads(path.read_text())
        except UnicodeDecodeError:
            raise PricerError(f"{path}: not a leaderboard summary (not UTF-8 text)") from None
        except ValueError as e:
            raise PricerError(f"{path}: not a leaderboard summary (invalid JSON: {e})") from None
        except OSError as e:
            raise PricerError(f"{path}: unreadable ({e.strerror or e})") from None
        found.append(check(summary, str(path)) | {"file": str(path)})
    if not found:
        raise PricerError(f"{folder}: no summary files (write them with pricer eval --summaries "
                          f"{folder})")
    return found


def boards(summaries: list[dict]) -> list[dict]:
    """One board per data set, never mixed: [{"name", "fingerprint", "n", "title", "rows",
    "machines"}], summaries grouped by (fingerprint, else name; n), the most items first, each
    board's rows sorted by error. A row carries the keys `leaderboard.bar_chart` draws
    (predictor, error, error_ci, published) and the summary's figures; "machine" is its number
    in the board's list of machines."""
    groups: dict[tuple, list[dict]] = {}
    for s in summaries:
        data = s["data"]
        groups.setdefault((data.get("fingerprint") or data["name"], s["n"]), []).append(s)
    out = []
    for (key, n), members in groups.items():
        names = sorted({s["data"]["name"] for s in members})
        fingerprint = members[0]["data"].get("fingerprint")
        machines: list[str] = []
        rows = []
        for s in sorted(members, key=lambda s: (s["error"], s["predictor"])):
            if s["machine"] not in machines:
                machines.append(s["machine"])
            rows.append({"predictor": s["predictor"], "error": s["error"],
                         "error_ci": s["error_ci95"], "rmsle": s["rmsle"], "hits": s["hits_pct"],
                         "mse": s["mse"], "r2": s["r2"], "n": s["n"], "date": s["date"],
                         "machine": machines.index(s["machine"]) + 1, "published": False,
                         "source": s["source"], "file": s["file"]})
        title = f"{', '.join(names)}, {n} items" + (f" (data {fingerprint[:8]})" if fingerprint else "")
        out.append({"name": names[0], "fingerprint": fingerprint, "n": n, "title": title,
                    "rows": rows, "machines": machines})
    return sorted(out, key=lambda b: (-b["n"], b["title"]))


def _figure(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def table(board: dict):
    """A rich Table of one board (`boards`): rank, predictor, error with its 95 % interval,
    RMSLE, hits, MSE, R², n, date and machine (numbered; the machines in the caption)."""
    from rich import box
    from rich.table import Table

    caption = "\n".join(f"machine {i}: {m}" for i, m in enumerate(board["machines"], 1))
    t = Table(title=f"leaderboard: {board['title']}", caption=caption, caption_justify="left",
              header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "predictor", "error $", "95% CI", "RMSLE", "hits%", "MSE", "R²", "n",
                   "date", "machine"):
        t.add_column(column, justify="left" if column in ("predictor", "date") else "right",
                     no_wrap=column != "predictor", min_width=16 if column == "predictor" else None)
    for rank, r in enumerate(board["rows"], 1):
        ci = r["error_ci"]
        t.add_row(str(rank), r["predictor"], f"{r['error']:,.2f}",
                  f"{ci[0]:,.2f}-{ci[1]:,.2f}" if ci else "", _figure(r["rmsle"], ".3f"),
                  _figure(r["hits"], ".1f"), _figure(r["mse"], ",.0f"), _figure(r["r2"], ".3f"),
                  str(r["n"]), r["date"], str(r["machine"]))
    return t
