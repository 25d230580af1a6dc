"""Gather every result JSON in a folder: one table and one bar chart per data set.

Results are ranked only against results on the same data: the same data fingerprint (of the
items evaluated) and the same size. Each row shows the 95 % interval of its error (older result
files without one show none). When a data set is the reference's own test split (the
amazon-pricer items, ids `official-*`), the reference's published figures (price-is-right.md,
section 3; measured on the split's first 250 items, which we keep apart) are shown beside ours in
that data set's table, marked as such.
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


def _row(r: dict) -> dict:
    data = r.get("data") or {}
    return {"predictor": r["predictor"] + (f" ({_failed(r)} failed)" if _failed(r) else ""),
            "failed": _failed(r), "error": r["error"], "error_ci": r.get("error_ci"),
            "rmsle": r["rmsle"], "mse": r.get("mse"), "r2": r.get("r2"), "hits": r["hits"],
            "n": r["n"], "size": r.get("size", r["n"]),
            "data": data.get("fingerprint", "?")[:8], "reference": bool(data.get("reference")),
            "settings": compact(r.get("settings") or {}), "published": False, "file": r["file"]}


def _published() -> list[dict]:
    return [{"predictor": name, "failed": 0, "error": e, "error_ci": None, "rmsle": l,
             "mse": None, "r2": None, "hits": h, "n": 250, "size": 250, "data": "reference",
             "reference": True, "settings": "", "published": True, "file": ""}
            for name, e, l, h in PUBLISHED]


def rows(results: list[dict], with_reference: bool | None = None) -> list[dict]:
    """Leaderboard rows of ONE data set sorted by error (see `boards` for a folder of mixed data);
    published rows added when any result is on the reference's data (or when `with_reference`
    says so). A result where some items failed (e.g. API errors, scored as misses) says so beside
    its name."""
    out = [_row(r) for r in results]
    if with_reference is None:
        with_reference = any(r["reference"] for r in out)
    if with_reference:
        out += _published()
    return sorted(out, key=lambda r: r["error"])


def boards(results: list[dict], with_reference: bool | None = None) -> list[dict]:
    """One board per data set: [{"data", "size", "reference", "title", "rows"}], results grouped
    by (data fingerprint, size), largest data set first. Published rows join the boards of the
    reference's own split (or every board when `with_reference` is True; none when False)."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        data = r.get("data") or {}
        groups.setdefault((data.get("fingerprint", "?"), r.get("size", r["n"])), []).append(r)
    out = []
    for (fp, size), members in groups.items():
        reference = any((r.get("data") or {}).get("reference") for r in members)
        published = reference if with_reference is None else with_reference
        out.append({"data": fp[:8], "size": size, "reference": reference,
                    "title": f"data {fp[:8]}, {size} items" + (" (the reference's test split)"
                                                                if reference else ""),
                    "rows": rows(members, with_reference=published)})
    return sorted(out, key=lambda b: (-b["size"], b["data"]))


def _ci(r: dict) -> str:
    """The half-width of the 95 % interval of the error ("" for published figures and older
    result files, which have none)."""
    ci = r.get("error_ci")
    return f"±{(ci[1] - ci[0]) / 2:,.2f}" if ci else ""


def table(board: list[dict], title: str = "leaderboard"):
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for column in ("#", "predictor", "error $", "95% CI", "RMSLE", "hits %", "n", "settings"):
        t.add_column(column, justify="left" if column in ("predictor", "settings") else "right",
                     no_wrap=column not in ("predictor", "settings"),
                     min_width=24 if column == "predictor" else None)
    for rank, r in enumerate(board, 1):
        style = "dim italic" if r["published"] else ("green" if r["hits"] >= 50 else
                                                      "dark_orange" if r["hits"] >= 25 else "red")
        name = f"{r['predictor']} (published)" if r["published"] else r["predictor"]
        t.add_row(str(rank), name, f"{r['error']:,.2f}", _ci(r), f"{r['rmsle']:.2f}",
                  f"{r['hits']:.1f}", str(r["n"]), r["settings"], style=style)
    return t


def bar_chart(board: list[dict], path: str | Path, title: str = "pricer leaderboard") -> Path:
    """Horizontal bars of the error with its 95 % interval as a whisker, ours in blue and the
    published ones in grey, best on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    ordered = list(reversed(board))
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(board) + 1.7))
    ax.barh([("* " if r["published"] else "") + f"{r['predictor'][:48]}" for r in ordered],
            [r["error"] for r in ordered],
            color=["lightgrey" if r["published"] else "steelblue" for r in ordered])
    with_ci = [(y, r) for y, r in enumerate(ordered) if r.get("error_ci")]
    if with_ci:  # the interval as a whisker (published figures have none)
        ax.errorbar([r["error"] for _, r in with_ci], [y for y, _ in with_ci],
                    xerr=[[r["error"] - r["error_ci"][0] for _, r in with_ci],
                          [r["error_ci"][1] - r["error"] for _, r in with_ci]],
                    fmt="none", ecolor="black", capsize=3, lw=1)
    for y, r in enumerate(ordered):
        top = r["error_ci"][1] if r.get("error_ci") else r["error"]
        ax.text(top, y, f"  ${r['error']:,.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(r["error_ci"][1] if r.get("error_ci") else r["error"] for r in board) * 1.15)
    ax.set_xlabel("mean absolute error ($) with its 95 % interval, lower is better"
                  + ("\n* = the reference's published figure (its own 250 items)"
                     if any(r["published"] for r in board) else ""))
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
