"""Gather every result JSON in a folder into one table sorted by error, and one bar chart.

When a result was measured on the reference's own test split (the amazon-pricer items, ids
`official-*`), the reference's published figures (price-is-right.md, section 3; measured on the
split's first 250 items, which we keep apart) are shown beside ours, marked as such.
"""

import json
from pathlib import Path

# (predictor, error $, RMSLE, hits %) as published by the reference on its 250 test items.
PUBLISHED = [
    ("random (randrange(1,1000), seed 42)", 340.74, 1.72, 11.6),
    ("constant (train mean)", 145.51, 1.22, 16.8),
    ("linear regression on 4 hand features", 139.34, 1.17, 15.6),
    ("bag of words (1000 words) + linear regression", 113.60, 0.99, 24.8),
    ("word2vec (400 dims) + linear regression", 115.47, 1.01, 27.6),
    ("word2vec + linear SVR", 112.52, 0.93, 26.4),
    ("word2vec + random forest (100 trees)", 97.11, 0.88, 34.0),
    ("a human", 126.55, 1.00, 32.0),
    ("GPT-4o-mini (prompted)", 79.58, 0.59, 52.0),
    ("GPT-4o (prompted)", 75.92, 0.75, 58.0),
    ("Claude 3.5 Sonnet (prompted)", 100.83, 0.60, 50.8),
    ("GPT-4o-mini fine-tuned on 500 items", 91.45, 0.68, 44.0),
    ("Llama 3.1 8B base, 4-bit, greedy", 395.72, 1.49, 28.0),
    ("Llama 3.1 8B QLoRA fine-tuned (top-3 weighted decoding)", 46.67, 0.38, 70.8),
]


def read_results(folder: str | Path) -> tuple[list[dict], list[str]]:
    """(result dicts, warnings) for every result JSON under `folder`; other JSON is ignored."""
    results, warnings = [], []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            warnings.append(f"{path}: unreadable ({type(e).__name__})")
            continue
        if isinstance(data, dict) and {"predictor", "error", "rmsle", "hits", "n"} <= data.keys():
            if data["error"] is not None:
                results.append(data | {"file": str(path)})
    return results, warnings


def compact(settings: dict, width: int = 40) -> str:
    """`key=value` pairs of a predictor's settings, short enough for a table cell."""
    text = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in settings.items() if k not in ("system", "prefill"))
    return text if len(text) <= width else text[:width - 3] + "..."


def _failed(result: dict) -> int:
    """Items whose prediction failed (older result files only list them under "errors")."""
    return result.get("failed", len(result.get("errors") or []))


def rows(results: list[dict], with_reference: bool | None = None) -> list[dict]:
    """Leaderboard rows sorted by error; published rows added when any result is on the
    reference's data (or when `with_reference` says so). A result where some items failed
    (e.g. API errors, scored as misses) says so beside its name."""
    out = [{"predictor": r["predictor"] + (f" ({_failed(r)} failed)" if _failed(r) else ""),
            "failed": _failed(r), "error": r["error"], "rmsle": r["rmsle"],
            "hits": r["hits"], "n": r["n"], "data": r.get("data", {}).get("fingerprint", "?")[:8],
            "settings": compact(r.get("settings") or {}), "published": False, "file": r["file"]}
           for r in results]
    if with_reference is None:
        with_reference = any(r.get("data", {}).get("reference") for r in results)
    if with_reference:
        out += [{"predictor": name, "failed": 0, "error": e, "rmsle": l, "hits": h, "n": 250,
                 "data": "reference", "settings": "", "published": True, "file": ""}
                for name, e, l, h in PUBLISHED]
    return sorted(out, key=lambda r: r["error"])


def table(board: list[dict], title: str = "leaderboard"):
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for column in ("#", "predictor", "error $", "RMSLE", "hits %", "n", "data", "settings"):
        t.add_column(column, justify="left" if column in ("predictor", "data", "settings")
                     else "right", no_wrap=column not in ("predictor", "settings"))
    for rank, r in enumerate(board, 1):
        style = "dim italic" if r["published"] else ("green" if r["hits"] >= 50 else
                                                      "dark_orange" if r["hits"] >= 25 else "red")
        name = f"{r['predictor']} (published)" if r["published"] else r["predictor"]
        t.add_row(str(rank), name, f"{r['error']:,.2f}", f"{r['rmsle']:.2f}", f"{r['hits']:.1f}",
                  str(r["n"]), r["data"], r["settings"], style=style)
    return t


def bar_chart(board: list[dict], path: str | Path) -> Path:
    """Horizontal bars of the error, ours in blue and the published ones in grey, best on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    ordered = list(reversed(board))
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(board) + 1.5))
    ax.barh([("* " if r["published"] else "") + f"{r['predictor'][:48]} [{r['data']}]"
             for r in ordered], [r["error"] for r in ordered],
            color=["lightgrey" if r["published"] else "steelblue" for r in ordered])
    for y, r in enumerate(ordered):
        ax.text(r["error"], y, f" ${r['error']:,.2f}", va="center", fontsize=8)
    ax.set_xlabel("mean absolute error ($), lower is better   (* = reference's published figure)")
    ax.set_title("pricer leaderboard")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
