"""The model's mistakes: label against prediction, and the answers worth a second look."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from .figures import natural_order

__all__ = ["confusion_table", "cell_rows", "confident_errors", "unsure_correct", "has_predictions"]


def has_predictions(samples: pd.DataFrame) -> bool:
    """Labels and predictions to compare (a classifier whose classes the labels name)."""
    return "correct" in samples.columns and samples["correct"].notna().any()


def _scored(samples: pd.DataFrame) -> pd.DataFrame:
    known = samples["label"].notna() & samples["prediction"].notna()
    return pd.DataFrame({"label": samples["label"].astype("string"), "prediction": samples["prediction"].astype("string"),
                         "row": np.arange(len(samples))})[known.to_numpy()]


def confusion_table(samples: pd.DataFrame) -> pd.DataFrame:
    """Counts of (label, prediction): labels as rows, predictions as columns, both in natural
    order and both including every class either side names (so the diagonal is the diagonal)."""
    scored = _scored(samples)
    classes = natural_order(set(scored["label"]) | set(scored["prediction"]))
    table = pd.crosstab(scored["label"], scored["prediction"])
    return table.reindex(index=classes, columns=classes, fill_value=0)


def cell_rows(samples: pd.DataFrame, cells: Iterable[tuple[str, str]]) -> np.ndarray:
    """Rows whose (label, prediction) is one of ``cells``, in row order."""
    wanted = {(str(a), str(b)) for a, b in cells}
    scored = _scored(samples)
    hit = [(a, b) in wanted for a, b in zip(scored["label"], scored["prediction"])]
    return scored["row"].to_numpy()[np.asarray(hit, dtype=bool)] if len(scored) else np.zeros(0, dtype=np.int64)


def confident_errors(samples: pd.DataFrame, n: int = 24) -> pd.DataFrame:
    """The wrong answers the model was surest of, most confident first: often label noise."""
    wrong = samples[samples["correct"].astype("boolean").eq(False).fillna(False).to_numpy(dtype=bool)]
    return wrong.sort_values("confidence", ascending=False, kind="stable").head(n)


def unsure_correct(samples: pd.DataFrame, n: int = 24) -> pd.DataFrame:
    """The right answers the model was least sure of, least confident first: the edge of a class."""
    right = samples[samples["correct"].astype("boolean").eq(True).fillna(False).to_numpy(dtype=bool)]
    return right.sort_values("confidence", ascending=True, kind="stable").head(n)
