"""The one predictor contract (scikit-learn's fit/predict, PEFT's shared base).

Every predictor, from the constant to a fine-tuned LLM or a remote frontier model, subclasses
`Predictor`, so the harness, `pricer eval`, the ensemble and the server use it one way:

    p = make_predictor("bow-lr")            # pricer.predict.registry: name -> factory
    if p.needs_fit:
        p.fit(train_prompts, train_prices)  # learns; a no-op where nothing is learnt
    p.prepare(items)                        # optional: sees the items' ids (guesses files)
    p.predict(prompts)                      # one price (or None) per prompt, in order
    p.settings()                            # what to record beside a result to repeat it
"""

from __future__ import annotations


class Predictor:
    """Base class of every predictor. Subclasses set `name` and implement `predict`."""

    name: str = "predictor"
    needs_fit: bool = False  # True: `predict` needs `fit` on the train split first
    batch_size: int = 64  # prompts per `predict` call the harness makes

    def fit(self, prompts: list[str], prices: list[float], progress=None) -> Predictor:
        """Learn from priced train prompts; `progress(done, total)` may be called. Returns self."""
        return self

    def prepare(self, items) -> None:
        """Called once by the harness with the items about to be predicted (ids, prompts)."""

    def settings(self) -> dict:
        """What to record beside the result so the run can be repeated (never a secret)."""
        return {}

    def predict(self, prompts: list[str]) -> list[float | None]:
        """One guess per prompt, in order; None where no price could be read."""
        raise NotImplementedError

    def predict_details(self, prompts: list[str]) -> list[dict]:
        """One dict per prompt: {"price": float | None} plus what the predictor knows besides
        (a spread p10/p50/p90, "reason" when no price). The default wraps `predict`."""
        return [{"price": price} if price is not None else {"price": None, "reason": "no price"}
                for price in self.predict(prompts)]
