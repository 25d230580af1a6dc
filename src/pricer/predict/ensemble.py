"""`ensemble`: a weighted blend of other predictors, fitted on a validation slice of the train split.

    log(1 + guess) = intercept + sum_i weight_i * log(1 + guess_i)

The weights are non-negative least squares on log price (scipy.optimize.nnls) over the members'
guesses on a validation slice carved from the TRAIN split (`data/validation.py: carve`, a seeded shuffle, the last
`val_size` items; never the test split). The intercept is free (two non-negative columns, +1 and
-1), so the weights need not sum to 1. With `balance_prices`, each validation item is weighted so
that every price band counts the same (weighted least squares), for a train split cheaper than
the items it will price; with `prices_like` (prices of items like those to be priced, e.g. the
train items known to come from the test distribution), so that the slice weighs like them. On the slice, the blend's squared log error (RMSLE) is at
most the best member's: that member alone (weight 1, intercept 0) is one of the candidates.
A member without a usable guess for an item counts as a guess of $0 there.

Members are predictors of the registry by name and options; those that learn must be fitted on
the train split WITHOUT the slice (`pricer ensemble` does that; a saved baseline given by path
must have been fitted that way too). Saved as JSON: members (name, options, weight), intercept.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from pricer.data.validation import carve
from pricer.errors import PricerError, reading, writing
from pricer.predict.base import Predictor

FORMAT = "pricer-ensemble/1"
Z90 = 1.2815515655446004  # the standard normal's 90th percentile


def _logs(guesses) -> np.ndarray:
    return np.log1p([g if g is not None and math.isfinite(g) and g > 0 else 0.0 for g in guesses])


def fit_weights(member_guesses: list[list[float | None]], truths: list[float],
                sample_weight=None) -> tuple[list[float], float]:
    """(weights >= 0, intercept) minimising the (item-weighted) squared error of the blend on
    log(1 + price)."""
    from scipy.optimize import nnls

    x = np.column_stack([_logs(g) for g in member_guesses])
    ones = np.ones((len(truths), 1))
    rows = np.sqrt(np.ones(len(truths)) if sample_weight is None else np.asarray(sample_weight))
    solution, _ = nnls(np.hstack([x, ones, -ones]) * rows[:, None], np.log1p(truths) * rows)
    return [float(w) for w in solution[:-2]], float(solution[-2] - solution[-1])


class EnsemblePredictor(Predictor):
    """exp(intercept + sum of weight * log(1 + member guess)) - 1 over fitted member predictors."""

    name = "ensemble"
    can_save = True

    def __init__(self, members: list[dict], predictors: list[Predictor], weights: list[float],
                 intercept: float, path: str | None = None):
        self.members, self.predictors = members, predictors
        self.weights, self.intercept, self.path = list(weights), float(intercept), path
        self.batch_size = min([p.batch_size for p in predictors] or [64])

    def settings(self) -> dict:
        return {"path": self.path, "intercept": round(self.intercept, 6),
                "members": [f"{m['predictor']}={w:.4f}" for m, w in zip(self.members, self.weights)]}

    def _guesses(self, items) -> list[tuple[float, list]]:
        """(weight, guesses) of every member with a weight (a member with weight 0 is not asked
        at all); heads that share their bottom layers run them once (predict/head.py)."""
        from pricer.predict.head import predict_heads, shared_groups

        active = [(p, w) for p, w in zip(self.predictors, self.weights) if w > 0]
        together = {}
        for group in shared_groups([p for p, _ in active]):
            together.update(zip(map(id, group), predict_heads(group, items)))
        return [(w, together[id(p)] if id(p) in together else p.predict(items)) for p, w in active]

    def predict(self, items) -> list[float | None]:
        if not items:
            return []
        blend = np.full(len(items), self.intercept)
        for weight, guesses in self._guesses(items):
            blend += weight * _logs(guesses)
        return [max(float(np.expm1(v)), 0.0) for v in blend]

    def predict_details(self, items) -> list[dict]:
        """The blend as `price` (= p50), and p10/p90 from how much the members disagree.

        Member i's view is the blend as if every member guessed what member i guesses:
        intercept + W * log(1 + guess_i), W the sum of the weights. The blend is the weighted
        mean of these views (weights w_i / W); with s their weighted standard deviation,
        p10/p90 = blend -/+ 1.2816 s on log(1 + price) (a normal spread of the views). This is
        the members' disagreement, not a calibrated interval: one member with a weight gives
        p10 = p50 = p90 (docs/deals.md measures how often truths fall inside)."""
        if not items:
            return []
        active = self._guesses(items)
        blend = np.full(len(items), self.intercept)
        spread = np.zeros(len(items))
        if active:
            logs = np.array([_logs(guesses) for _, guesses in active])  # members x items
            weights = np.array([w for w, _ in active])
            for row, weight in zip(logs, weights):  # the same sum as `predict`
                blend += weight * row
            views = self.intercept + weights.sum() * logs
            share = weights / weights.sum()
            spread = np.sqrt(share @ (views - blend) ** 2)
        price = lambda v: max(float(np.expm1(v)), 0.0)  # noqa: E731
        return [{"price": price(b), "p10": price(b - Z90 * s), "p50": price(b),
                 "p90": price(b + Z90 * s)} for b, s in zip(blend, spread)]

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        path = Path(path)
        body = {"format": FORMAT, "intercept": self.intercept,
                "members": [m | {"weight": w} for m, w in zip(self.members, self.weights)],
                **(extra or {})}
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(body, indent=1, default=str))
        self.path = str(path)
        return path


def load_ensemble(path: Path | None = None) -> EnsemblePredictor:
    """An ensemble saved by `pricer ensemble`: its members are made again from the registry."""
    from pricer.predict.registry import make_predictor

    if path is None:
        raise PricerError("ensemble: give the weights file of pricer ensemble with --path FILE (or --opt path=FILE)")
    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: no such ensemble file")
    with reading(path):
        body = json.loads(path.read_text())
    if not isinstance(body, dict) or body.get("format") != FORMAT or not body.get("members"):
        raise PricerError(f"{path}: not an ensemble file (written by pricer ensemble)")
    members = [{k: v for k, v in m.items() if k != "weight"} for m in body["members"]]
    predictors = []
    for m in members:
        options = dict(m.get("options") or {})
        if m.get("fitted") and "path" in options:  # saved by fit_ensemble beside this file
            options["path"] = str(path.parent / options["path"])
        predictor = make_predictor(m["predictor"], **options)
        if predictor.needs_fit:
            raise PricerError(f"{path}: member {m['predictor']} must be saved fitted (give it "
                              "by --path); an unfitted member cannot predict")
        predictors.append(predictor)
    return EnsemblePredictor(members, predictors, [float(m["weight"]) for m in body["members"]],
                             float(body["intercept"]), path=str(path))


def parse_member(spec: str) -> dict:
    """"name" or "name:key=value,key=value" -> {"predictor", "options"} (options as text; the
    registry converts them to each option's type)."""
    name, _, rest = spec.partition(":")
    options = {}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PricerError(f"--member {spec!r}: write options as name:key=value,key=value")
        options[key.strip().replace("-", "_")] = value.strip()
    if not name.strip():
        raise PricerError(f"--member {spec!r}: no predictor name")
    return {"predictor": name.strip(), "options": options}


def fit_ensemble(specs: list[dict], train_items: list, out: str | Path, val_size: int = 500,
                 seed: int = 42, bounds: tuple[float, float] | None = None,
                 progress=None, balance_prices: bool = False,
                 prices_like: list[float] | None = None,
                 val_pool: int = 0) -> tuple[EnsemblePredictor, dict]:
    """Carve a validation slice from `train_items` (from their first `val_pool`, if given), fit the members that learn on the rest (saved
    beside `out`, in OUT_STEM-members/), predict the slice with every member, fit the weights and
    save the ensemble as JSON at `out`. `progress(member, stage)` reports each step.
    Returns (the ensemble, a report: per member its validation error and RMSLE, and the blend's)."""
    from pricer.data.store import price_bounds
    from pricer.predict.fit import fit_predictor, train_split
    from pricer.predict.metrics import score, summarise
    from pricer.predict.registry import make_predictor, option_types

    if len(specs) < 1:
        raise PricerError("give at least one --member")
    report = progress or (lambda *args: None)
    bounds = bounds or price_bounds()
    fit_items, val_items = carve(train_items, val_size, seed, val_pool)
    val_kept, val_prices, _ = train_split(val_items, bounds)
    if not val_kept:
        raise PricerError("the validation slice has no item with a price within the bounds")
    out = Path(out)
    folder = out.with_name(f"{out.stem}-members")
    members, predictors, guesses = [], [], []
    for number, spec in enumerate(specs):
        predictor = make_predictor(spec["predictor"], **spec["options"])
        member = {"predictor": spec["predictor"], "options": dict(spec["options"])}
        if predictor.needs_fit:
            report(spec["predictor"], "fitting")
            fit_predictor(predictor, fit_items, bounds)
            if predictor.can_save:  # learnt weights: saved, then loaded as a baseline
                suffix = ".safetensors" if spec["predictor"] == "dnn" else ".skops"
                saved = predictor.save(folder / f"{number}-{spec['predictor']}{suffix}")
                member = {"predictor": "baseline", "fitted": spec["predictor"],  # path: from out
                          "options": {"path": str(saved.relative_to(out.parent))}}
            else:  # e.g. constant: what it learnt is one of its own options
                kinds = option_types(spec["predictor"])
                member["options"] |= {k: v for k, v in predictor.settings().items() if k in kinds}
        report(spec["predictor"], "predicting")
        predictors.append(predictor)
        members.append(member)
        guesses.append(predictor.predict(val_kept))
    # balance_prices: every price band of the slice counts the same; prices_like: the slice
    # weighs like a sample with these prices (a prior shift); else every item counts once
    from pricer.data.balance import item_weights

    row_weights = item_weights(val_prices, balance_prices, prices_like)
    weights, intercept = fit_weights(guesses, val_prices, row_weights)
    ensemble = EnsemblePredictor(members, predictors, weights, intercept)
    blend = ensemble.predict(val_kept)

    def summary(values, name=None):
        scores = [score(v, t) for v, t in zip(values, val_prices)]
        s = summarise(scores)
        found = {"name": name, "error": s["error"], "rmsle": s["rmsle"], "hits": s["hits"]}
        if balance_prices or prices_like:  # the figures the weights were fitted for
            w = row_weights / row_weights.sum()
            found |= {"weighted_error": float(np.dot(w, [x.error for x in scores])),
                      "weighted_rmsle": float(math.sqrt(np.dot(w, [x.sle for x in scores])))}
        return found

    found = {"validation": {"items": len(val_kept), "seed": seed, "val_size": val_size,
                            "val_pool": val_pool,
                            "fit_items": len(fit_items), "balance_prices": balance_prices,
                            "prices_like_items": len(prices_like or []),
                            "members": [summary(g, p.name) for g, p in zip(guesses, predictors)],
                            "ensemble": summary(blend, "ensemble")},
             "method": "non-negative least squares on log(1 + price), free intercept (scipy nnls)"}
    ensemble.save(out, extra=found)
    return ensemble, found
