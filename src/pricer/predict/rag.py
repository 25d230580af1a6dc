"""`frontier-rag`: the frontier model shown the k training items most similar to the item, with
their prices, before the item itself (the reference's week 8: all-MiniLM-L6-v2 embeddings of the
items, the 5 most similar given as context; GPT-5.1 with them scored $30.19 against $44.74
alone, price-is-right.md section 3).

The user message is the reference's: "To provide some context, here are some other items that
might be similar to the item you need to estimate.", then per similar item "Potentially related
product:", its description and "Price is $X.XX", then "And now the question for you:" and the
plain frontier question. Each request so carries k more descriptions (about k x 160 more tokens).

`fit` indexes the train split it is given (`pricer eval` passes the train split only, so no test
item is ever in the index), with `predict.neighbours`: an indexed item whose description is
exactly the query's is never shown (it would give its own price away). With `path=FOLDER`, an
index saved there is loaded (nothing left to fit); when FOLDER does not exist yet, `fit` saves the
index it builds there, for the next run.
"""

from __future__ import annotations

from pathlib import Path

from pricer.errors import PricerError
from pricer.predict.frontier import FrontierPredictor, messages_for
from pricer.predict.base import texts_of
from pricer.predict.neighbours import Neighbours, load_neighbours

CONTEXT = ("To provide some context, here are some other items that might be similar to the "
           "item you need to estimate.")
QUESTION_INTRO = "And now the question for you:"


def rag_messages(text: str, similar: list[tuple[str, float]]) -> list[dict]:
    """The reference's week-8 messages: the frontier messages of an item's `text`, its user
    message preceded by the (description, price) pairs of `similar`."""
    system, user, prefill = messages_for(text)
    if not similar:
        return [system, user, prefill]
    context = "".join(f"Potentially related product:\n{text.strip()}\nPrice is ${price:.2f}\n\n"
                      for text, price in similar)
    content = f"{CONTEXT}\n\n{context}{QUESTION_INTRO}\n\n{user['content']}"
    return [system, {"role": "user", "content": content}, prefill]


class RagPredictor(FrontierPredictor):
    """A `FrontierPredictor` whose requests list the `k` most similar train items with prices."""

    name = "frontier-rag"
    needs_fit = True

    @classmethod
    def create(cls, api_model: str | None = None, model: str | None = None, k: int = 5,
               path: Path | None = None, base_url: str | None = None, api_key: str | None = None,
               seed: int = 42, max_tokens: int = 5, timeout: float = 60.0, max_retries: int = 5,
               workers: int = 4):
        """The registry's constructor (as FrontierPredictor's, with `k` and the index `path`)."""
        return cls(api_model or model, k=k, path=path, base_url=base_url, api_key=api_key,
                   seed=seed, max_tokens=max_tokens, timeout=timeout, max_retries=max_retries,
                   workers=workers)

    def __init__(self, model: str | None, k: int = 5, path: str | Path | None = None, **frontier):
        if k < 1:
            raise PricerError(f"frontier-rag: k must be at least 1, got {k}")
        super().__init__(model, **frontier)
        self.k, self.path = k, Path(path) if path else None
        self.neighbours: Neighbours | None = None
        if self.path is not None and self.path.exists():
            self.neighbours = load_neighbours(self.path)
            self.needs_fit = False

    def fit(self, items, prices, progress=None) -> RagPredictor:
        """Index the priced train items (embedding them is the slow part: minutes for 14k on
        2 cores, cached on disk); saved to `path` when one was given."""
        from pricer.data.items import Item

        items = [Item(f"train-{n}", t, float(v)) for n, (t, v) in enumerate(zip(texts_of(items), prices))
                 if v is not None and v > 0]
        if not items:
            raise PricerError("frontier-rag: no priced train item to index")
        self.neighbours = Neighbours(items, progress=progress)
        if self.path is not None:
            self.save_index(self.path)
        self.needs_fit = False
        return self

    def save_index(self, folder: str | Path) -> Path:
        """Write the index (vectors.npy + items.json); `path=FOLDER` loads it again."""
        if self.neighbours is None:
            raise PricerError("frontier-rag: nothing to save, no index yet (fit it first)")
        return self.neighbours.save(folder)

    def settings(self) -> dict:
        return {**super().settings(), "k": self.k,
                "index_size": len(self.neighbours) if self.neighbours is not None else 0,
                "path": str(self.path) if self.path else None, "context": CONTEXT}

    def similar(self, items) -> list[list[dict]]:
        """Per item, the `k` similar train items shown to the model:
        {"id", "title", "price", "similarity", "text"}, most similar first."""
        if self.neighbours is None:
            raise PricerError("frontier-rag: no index of similar items (fit it on a train split, "
                              "or give path= a saved index)")
        index = self.neighbours
        return [[{"id": index.items[j].id, "title": index.texts[j].split("\n")[0],
                  "price": index.items[j].price, "similarity": score, "text": index.texts[j]}
                 for j, score in pairs] for pairs in index.nearest(items, self.k)]

    def conversations(self, items, found: list[list[dict]] | None = None) -> list[list[dict]]:
        found = self.similar(items) if found is None else found
        return [rag_messages(t, [(s["text"], s["price"]) for s in similar])
                for t, similar in zip(texts_of(items), found)]

    def predict(self, items) -> list[float | None]:
        return [d["price"] for d in self.predict_details(items)]

    def predict_details(self, items) -> list[dict]:
        """Each price with the similar items its request showed ("neighbours", without text)."""
        found = self.similar(items)
        prices = self.ask_all(self.conversations(items, found))
        return [{"price": price, **({} if price is not None else {"reason": "no price"}),
                 "neighbours": [{k: v for k, v in s.items() if k != "text"} for s in similar]}
                for price, similar in zip(prices, found)]
