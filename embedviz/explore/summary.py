"""Headline numbers about a feature set's predictions, for the home page and reports."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Accuracy", "accuracy"]


@dataclass(frozen=True)
class Accuracy:
    """Top-1 accuracy over ``scope`` (the held-back ``test`` split when there is one)."""

    value: float
    mistakes: int
    count: int
    scope: str


def accuracy(samples: pd.DataFrame) -> Accuracy | None:
    """``None`` when there is nothing to score (no labels the model knows, or no classifier)."""
    if "correct" not in samples.columns or not samples["correct"].notna().any():
        return None
    scope = "test" if "split" in samples.columns and (samples["split"] == "test").any() else "all"
    scored = samples.loc[samples["split"] == "test"] if scope == "test" else samples
    correct = scored["correct"].dropna().astype(bool)
    return Accuracy(float(correct.mean()), int((~correct).sum()), int(len(correct)), scope)
