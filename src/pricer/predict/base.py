"""The one predictor contract, in scikit-learn's spirit (fit/predict/get_params), shared by
every predictor from the constant to a fine-tuned LLM or a remote frontier model:

    p = make_predictor("bow-lr", seed=1)     # pricer.predict.registry: name -> constructor
    if p.needs_fit:
        p.fit(train_items, prices)           # learns; a no-op where nothing is learnt
    p.predict(items)                         # one price (or None) per item, in order
    p.settings()                             # what to record beside a result to repeat it
    p.get_params()                           # the options it was made with:
    make_predictor(p.registry_name, **p.get_params())  # ... which make it again
    p.save(path)                             # where `can_save`; read back by the registry:
    make_predictor("baseline", path=path)    #   (or "ensemble"; `--run FILE` on the CLI)

Predictors receive items (`pricer.data.items.Item`: id, text, price, category), never prompts:
only the language-model predictors build a prompt, in `pricer.predict.prompting`.
A predictor's options are the keyword arguments of the constructor the registry names for it
(the class, its `create`, or a loader such as `load_llm_predictor`): the registry reads
them from that signature and restates nothing.
"""

from __future__ import annotations

from pathlib import Path

from pricer.errors import PricerError


class Predictor:
    """Base class of every predictor. Subclasses set `name` and implement `predict`."""

    name: str = "predictor"
    needs_fit: bool = False  # True: `predict` needs `fit` on the train split first
    can_save: bool = False  # True: `save(path)` writes a file the registry reads back (path=)
    batch_size: int = 64  # items per `predict` call the harness makes
    registry_name: str | None = None  # its name in the registry (set by make_predictor)
    _params: dict | None = None

    @classmethod
    def create(cls, **options) -> Predictor:
        """The predictor from its options (the registry's constructor; its signature is the
        predictor's list of options)."""
        return cls(**options)

    def get_params(self) -> dict:
        """The options it was made with (as make_predictor received them)."""
        return dict(self._params or {})

    def fit(self, items: list, prices: list[float], progress=None) -> Predictor:
        """Learn from priced train items; `progress(done, total)` may be called. Returns self."""
        return self

    def settings(self) -> dict:
        """What to record beside the result so the run can be repeated (never a secret)."""
        return {}

    def predict(self, items: list) -> list[float | None]:
        """One guess per item, in order; None where no price could be read."""
        raise NotImplementedError

    def predict_details(self, items: list) -> list[dict]:
        """One dict per item: {"price": float | None} plus what the predictor knows besides
        (a spread p10/p50/p90, "reason" when no price). The default wraps `predict`."""
        return [{"price": price} if price is not None else {"price": None, "reason": "no price"}
                for price in self.predict(items)]

    def save(self, path: str | Path) -> Path:
        """Write the fitted predictor to `path` (where `can_save`)."""
        raise PricerError(f"{self.name} cannot be saved")


def texts_of(items) -> list[str]:
    """The descriptions of `items` (Items; a bare string is read as one item's text)."""
    from pricer.data.items import as_items

    return [item.text for item in as_items(items)]
