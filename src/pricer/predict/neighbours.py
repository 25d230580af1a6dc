"""The most similar training items to a description: all-MiniLM-L6-v2 embeddings (the same
`embed` as the embedding baselines) and cosine similarity, top k. A brute-force numpy dot
product: 14k x 384 floats answers in about a millisecond, so no vector index library."""

from __future__ import annotations

import numpy as np

from pricer.data.prompts import description


class Neighbours:
    """Index priced items once (`Neighbours(items)`), then `search(texts, k)`."""

    def __init__(self, items, progress=None):
        from pricer.predict.baselines import embed

        self.items = list(items)
        self.vectors = _unit(embed([description(i.prompt) for i in self.items], progress=progress))

    def __len__(self) -> int:
        return len(self.items)

    def search(self, texts: list[str], k: int = 5) -> list[list[dict]]:
        """Per text, the `k` most similar items: {"id", "title", "price", "similarity"}."""
        from pricer.predict.baselines import embed

        if not self.items or not texts:
            return [[] for _ in texts]
        scores = _unit(embed([description(t) for t in texts])) @ self.vectors.T
        k = min(k, len(self.items))
        found = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top])]
            found.append([{"id": self.items[j].id, "title": description(self.items[j].prompt).split("\n")[0],
                           "price": self.items[j].price, "similarity": round(float(row[j]), 4)}
                          for j in top])
        return found


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
