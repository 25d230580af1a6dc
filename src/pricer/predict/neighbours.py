"""The most similar training items to a description: all-MiniLM-L6-v2 embeddings (the same
`embed` as the embedding baselines) and cosine similarity, top k. A brute-force numpy dot
product: 14k x 384 floats answers in about 2 ms a query, so no vector index library (faiss,
chromadb) earns its place here.

An indexed item whose description is exactly the query's (spacing aside) is never returned: it
is the query itself, and as a neighbour it would hand over its own price.

Saved as a folder that loads without running code (no pickle): `vectors.npy` (float32, one
unit-length row per item) and `items.json` (format, encoder, and per item its id, description,
price and category).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pricer.errors import PricerError, reading, writing
from pricer.predict.base import texts_of

FORMAT = "pricer-neighbours/1"
ENCODER = "all-MiniLM-L6-v2"
VECTORS, ITEMS = "vectors.npy", "items.json"


class Neighbours:
    """Index priced items once (`Neighbours(items)`), then `search(texts, k)`; `save(folder)`
    and `load_neighbours(folder)` keep the index for another run."""

    def __init__(self, items, progress=None, vectors: np.ndarray | None = None):
        from pricer.predict.baselines import embed

        self.items = list(items)
        self.texts = [i.text for i in self.items]  # as the baselines embed them
        self.vectors = _unit(embed(self.texts, progress=progress) if vectors is None else vectors)
        self._same: dict[str, list[int]] = {}  # description -> the rows holding exactly it
        for row, text in enumerate(self.texts):
            self._same.setdefault(_key(text), []).append(row)

    def __len__(self) -> int:
        return len(self.items)

    def nearest(self, texts, k: int = 5) -> list[list[tuple[int, float]]]:
        """Per text (or item), up to `k` (row, cosine similarity) pairs, most similar first; rows whose
        description is exactly the text's are left out."""
        from pricer.predict.baselines import embed

        if k < 1:
            raise PricerError(f"k must be at least 1, got {k}")
        if not self.items or not texts:
            return [[] for _ in texts]
        queries = texts_of(texts)
        scores = _unit(embed(queries)) @ self.vectors.T
        found = []
        for query, row in zip(queries, scores):
            same = self._same.get(_key(query), [])
            row[same] = -np.inf
            top_k = min(k, len(self.items) - len(same))
            if top_k < 1:
                found.append([])
                continue
            top = np.argpartition(-row, top_k - 1)[:top_k]
            top = top[np.argsort(-row[top], kind="stable")]
            found.append([(int(j), round(float(row[j]), 4)) for j in top])
        return found

    def search(self, texts: list[str], k: int = 5) -> list[list[dict]]:
        """Per text, the `k` most similar items: {"id", "title", "price", "similarity"}."""
        return [[{"id": self.items[j].id, "title": self.texts[j].split("\n")[0],
                  "price": self.items[j].price, "similarity": score} for j, score in pairs]
                for pairs in self.nearest(texts, k)]

    def save(self, folder: str | Path) -> Path:
        """Write the index to `folder` (created): vectors.npy and items.json."""
        folder = Path(folder)
        body = {"format": FORMAT, "encoder": ENCODER, "count": len(self.items),
                "items": [{"id": i.id, "text": t, "price": i.price, "category": i.category}
                          for i, t in zip(self.items, self.texts)]}
        with writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / VECTORS, self.vectors, allow_pickle=False)
            (folder / ITEMS).write_text(json.dumps(body, indent=1), encoding="utf-8")
        return folder


def load_neighbours(folder: str | Path) -> Neighbours:
    """An index written by `Neighbours.save` (nothing in it can run code when loaded)."""
    from pricer.data.items import Item

    folder = Path(folder)
    if not (folder / ITEMS).is_file() or not (folder / VECTORS).is_file():
        raise PricerError(f"{folder}: not a saved similar-items index (a folder with {ITEMS} "
                          f"and {VECTORS})")
    with reading(folder / ITEMS):
        body = json.loads((folder / ITEMS).read_text(encoding="utf-8"))
    with reading(folder / VECTORS):
        vectors = np.load(folder / VECTORS, allow_pickle=False)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise PricerError(f"{folder / ITEMS}: not a saved similar-items index (no {FORMAT})")
    rows = body.get("items") or []
    if (vectors.dtype.kind != "f" or vectors.ndim != 2 or vectors.shape[0] != len(rows)
            or not np.isfinite(vectors).all()):
        raise PricerError(f"{folder / VECTORS}: expected {len(rows)} rows of finite float "
                          f"vectors (one per item of {ITEMS}), got {vectors.dtype} {vectors.shape}")
    try:
        items = [Item(str(r["id"]), r["text"], float(r["price"]), r.get("category"))
                 for r in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise PricerError(f"{folder / ITEMS}: an item lacks its id, text or price ({e})") from None
    return Neighbours(items, vectors=vectors)


def _key(text: str) -> str:
    return " ".join(text.split())


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
