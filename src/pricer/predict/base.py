"""The one predictor contract: a batch of test prompts in, one price (or None) per prompt out.

Baselines, local LLMs and remote models all implement it, so `pricer eval` measures each of them
the same way. `fit` is optional (classical baselines learn from the train split; an LLM does not).
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Predictor(Protocol):
    name: str

    def settings(self) -> dict:
        """What to record beside the result so the run can be repeated."""
        ...

    def predict(self, prompts: list[str]) -> list[float | None]:
        """One guess per prompt, in order; None where no price could be read."""
        ...
