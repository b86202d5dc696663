"""The model's mistakes: label against prediction, and the answers worth a second look."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from embedviz.data.classes import natural_order

__all__ = ["confusion_table", "cell_rows", "confident_errors", "unsure_correct", "has_predictions",
           "why_no_mistakes", "CLASSES_ARE_NOT_LABELS"]

#: The start of the message for a model whose classes are not the labels (the page links to Data & model).
CLASSES_ARE_NOT_LABELS = "The model's classes are not the labels"


def has_predictions(samples: pd.DataFrame) -> bool:
    """Labels and predictions to compare (a classifier whose classes the labels name)."""
    return "correct" in samples.columns and samples["correct"].notna().any()


def _some(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (", …" if len(names) > most else "")


def why_no_mistakes(samples: pd.DataFrame) -> str | None:
    """Why there is nothing to score, in one line that says what to do (``None``: there is).

    Three different reasons: no predictions (the model is not a classifier), no labels, or a
    model whose classes are not the labels (ten digit classes, two folder names): the last one
    is mended with a class index that names the model's classes with the labels.
    """
    if has_predictions(samples):
        return None
    if "prediction" not in samples.columns or samples["prediction"].isna().all():
        return ("No predictions to check: the model gives no class scores (it is not a classifier, or the features "
                "came without them), so there are no mistakes to show.")
    if "label" not in samples.columns or samples["label"].isna().all():
        return ("No labels to check the predictions against: put the images in one folder per class, or give the "
                "features a label column.")
    predicted = natural_order(pd.unique(samples["prediction"].dropna().astype(str)))
    labels = natural_order(pd.unique(samples["label"].dropna().astype(str)))
    return (f"{CLASSES_ARE_NOT_LABELS}: it predicts {len(predicted):,} classes ({_some(predicted)}) and the data has "
            f"{len(labels):,} labels ({_some(labels)}), none in common. On Data & model, upload a class index "
            "(JSON {\"0\": \"cat\", …}) that names the model's classes with these labels.")


def _scored(samples: pd.DataFrame) -> pd.DataFrame:
    known = samples["label"].notna() & samples["prediction"].notna()
    return pd.DataFrame({"label": samples["label"].astype("string"),
                         "prediction": samples["prediction"].astype("string"),
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
