"""`dnn`: the 2025 edition's deep network baseline (price-is-right.md, section 3b), on the CPU.

A residual MLP over a HashingVectorizer of the item DESCRIPTION (5,000 hashed features of words,
English stop words removed, binary, as the course), regressing log(1 + price) (standardised);
its guess is exp(output) - 1, clipped at 0. The course used 10 residual blocks of width 4096;
that takes hours on a 2-core CPU, so the defaults are 4 blocks of width 512 (one fit over the
14k train items takes a few minutes there); both are options (`blocks`, `width`).

Training: Adam, mean squared error on the standardised log price, mini-batches in a seeded
order; early stopping on a validation slice carved from the TRAIN prompts (`val_fraction` of
them after a seeded shuffle; never the test split): the weights of the best validation epoch are
kept. Fixed seed, deterministic on the CPU (one generator for the weights, one for the order).

Saved as one safetensors file (`.safetensors`): the weights, with the settings and target scale
as JSON in the file's metadata. No pickle: loading it cannot run code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from pricer.errors import PricerError, reading, writing
from pricer.predict.base import Predictor, texts_of

FORMAT = "pricer-dnn/1"


def vectorizer(features: int = 5000):
    """The course's text features: hashed words (no vocabulary to learn or save)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=features, stop_words="english", binary=True)


def network(features: int, width: int, blocks: int, dropout: float):
    """Linear(features -> width) + ReLU, `blocks` residual blocks, Linear(width -> 1)."""
    import torch
    from torch import nn

    class ResidualBlock(nn.Module):
        """x + (Linear -> LayerNorm -> ReLU -> Dropout -> Linear -> LayerNorm), then ReLU."""

        def __init__(self, width: int, dropout: float):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(width, width),
                                      nn.LayerNorm(width))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.body(x))

    return nn.Sequential(nn.Linear(features, width), nn.ReLU(),
                         *[ResidualBlock(width, dropout) for _ in range(blocks)],
                         nn.Linear(width, 1))


class DnnPredictor(Predictor):
    """Residual MLP on hashed description words, trained on log price (torch, CPU)."""

    name = "dnn"
    needs_fit = True
    can_save = True
    batch_size = 512

    def __init__(self, blocks: int = 4, width: int = 512, features: int = 5000,
                 epochs: int = 20, patience: int = 3, lr: float = 1e-3, train_batch: int = 128,
                 dropout: float = 0.2, val_fraction: float = 0.1, seed: int = 42,
                 balance_prices: bool = False, prices_like: list[float] | Path | None = None):
        from pricer.predict.fit import prices_from

        prices_like = prices_from(prices_like)
        checks = [(blocks >= 0, "blocks must be 0 or more"), (width >= 1, "width must be >= 1"),
                  (features >= 1, "features must be >= 1"), (epochs >= 1, "epochs must be >= 1"),
                  (patience >= 1, "patience must be >= 1"), (lr > 0, "lr must be > 0"),
                  (train_batch >= 1, "train_batch must be >= 1"),
                  (0 <= dropout < 1, "dropout must be in [0, 1)"),
                  (0 < val_fraction < 1, "val_fraction must be between 0 and 1")]
        for ok, message in checks:
            if not ok:
                raise PricerError(f"dnn: {message}")
        self.config = {"blocks": int(blocks), "width": int(width), "features": int(features),
                       "epochs": int(epochs), "patience": int(patience), "lr": float(lr),
                       "train_batch": int(train_batch), "dropout": float(dropout),
                       "val_fraction": float(val_fraction), "seed": int(seed),
                       "balance_prices": bool(balance_prices),
                       "prices_like": [float(p) for p in prices_like] if prices_like else None}
        from pricer.data.balance import weighted_name

        self.name = weighted_name("dnn", balance_prices, prices_like)
        self.model = None
        self.scale = (0.0, 1.0)  # mean and sd of log(1 + price) on the train items
        self.history: list[dict] = []  # per epoch: train and validation loss
        self.train_size = 0

    def _inputs(self, texts: list[str]):
        import torch

        matrix = vectorizer(self.config["features"]).transform(texts)
        return torch.from_numpy(matrix.toarray().astype(np.float32))

    def fit(self, items, prices, progress=None) -> "DnnPredictor":
        """Train on priced items (prices <= 0 or None left out); `progress(epoch, epochs)`."""
        import torch

        pairs = [(t, float(v)) for t, v in zip(texts_of(items), prices) if v is not None and v > 0]
        if len(pairs) < 10:
            raise PricerError(f"dnn: needs at least 10 priced train items, got {len(pairs)}")
        c = self.config
        rng = np.random.default_rng(c["seed"])
        order = rng.permutation(len(pairs))
        n_val = max(1, int(round(len(pairs) * c["val_fraction"])))
        val, train = order[:n_val], order[n_val:]
        x = self._inputs([p for p, _ in pairs])
        logs = np.log1p(np.array([v for _, v in pairs]))
        mean, sd = float(logs[train].mean()), float(logs[train].std()) or 1.0
        self.scale = (mean, sd)
        y = torch.from_numpy(((logs - mean) / sd).astype(np.float32))
        from pricer.data.balance import item_weights

        weights = item_weights(np.expm1(logs), c["balance_prices"], c["prices_like"])
        w = torch.from_numpy(weights.astype(np.float32))

        def loss_fn(guess, truth, weight):  # weighted squared error on standardised log price
            return ((guess - truth) ** 2 * weight).sum() / weight.sum()

        torch.manual_seed(c["seed"])
        model = network(c["features"], c["width"], c["blocks"], c["dropout"])
        optimiser = torch.optim.Adam(model.parameters(), lr=c["lr"])
        order_gen = torch.Generator().manual_seed(c["seed"])
        x_train, y_train, w_train = x[train], y[train], w[train]
        x_val, y_val, w_val = x[val], y[val], w[val]
        best, best_state, waited, self.history = math.inf, None, 0, []
        for epoch in range(c["epochs"]):
            model.train()
            total = 0.0
            for batch in torch.randperm(len(train), generator=order_gen).split(c["train_batch"]):
                optimiser.zero_grad()
                loss = loss_fn(model(x_train[batch]).squeeze(-1), y_train[batch], w_train[batch])
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            model.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(model(x_val).squeeze(-1), y_val, w_val))
            self.history.append({"epoch": epoch + 1, "train_loss": total / len(train),
                                 "val_loss": val_loss})
            if progress:
                progress(epoch + 1, c["epochs"])
            if val_loss < best:
                best, waited = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                if waited >= c["patience"]:
                    break
        model.load_state_dict(best_state)
        model.eval()
        self.model, self.train_size, self.needs_fit = model, len(train), False
        return self

    def settings(self) -> dict:
        shown = {k: v for k, v in self.config.items() if k != "prices_like"}  # a count, as baselines
        return {**shown, "prices_like_items": len(self.config["prices_like"] or []),
                "train_size": self.train_size, "epochs_run": len(self.history)}

    def predict(self, items) -> list[float | None]:
        import torch

        if self.model is None:
            raise PricerError("dnn: not fitted (fit it on a train split or load a saved one)")
        if not items:
            return []
        with torch.no_grad():
            out = self.model(self._inputs(texts_of(items))).squeeze(-1).double().numpy()
        mean, sd = self.scale
        return [max(float(np.expm1(v * sd + mean)), 0.0) for v in out]

    def save(self, path: str | Path) -> Path:
        """One .safetensors file: the weights, and the settings in its metadata (JSON)."""
        from safetensors.torch import save_file

        if self.model is None:
            raise PricerError("dnn: nothing to save, it is not fitted")
        path = Path(path)
        meta = {"format": FORMAT, "config": self.config, "scale": list(self.scale),
                "train_size": self.train_size, "history": self.history}
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(path),
                      metadata={"pricer": json.dumps(meta)})
        return path


def load_dnn(path: str | Path) -> DnnPredictor:
    """A `dnn` saved with `DnnPredictor.save` (safetensors: no code runs on loading)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: no such saved dnn")
    with reading(path):
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("pricer", "{}"))
            weights = load_file(str(path))
        except (SafetensorError, ValueError) as e:  # not safetensors, or metadata not JSON
            raise PricerError(f"{path}: not a saved dnn ({type(e).__name__})") from None
    if meta.get("format") != FORMAT:
        raise PricerError(f"{path}: not a saved dnn (no {FORMAT} metadata)")
    predictor = DnnPredictor(**meta["config"])
    c = predictor.config
    model = network(c["features"], c["width"], c["blocks"], c["dropout"])
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise PricerError(f"{path}: its weights do not match its settings ({str(e)[:120]})") from None
    model.eval()
    predictor.model, predictor.scale = model, tuple(meta["scale"])
    predictor.train_size, predictor.history = int(meta["train_size"]), meta.get("history", [])
    predictor.needs_fit = False
    return predictor
