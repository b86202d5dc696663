"""What is wrong with the data: suspected label errors, duplicates and leaks, and outliers, per sample.

Everything is read off one neighbour graph: the one the reducers build and cache for these features
(:func:`embedviz.maps.reducers.neighbours.neighbour_graph`, on the features prepared as t-SNE and UMAP
prepare them by default: PCA to 50 dimensions), so an audit after a map costs little more than the
ranking, and a map after an audit finds its graph made.

- **Label errors**: cleanlab's confident learning (``find_label_issues``) and its label quality score,
  on predicted probabilities that are either the model's own (its ``p_<class>`` columns, when its
  classes are the labels) or out-of-sample k-NN probabilities: each sample's label is predicted from
  its k nearest other samples' labels, never its own.
  Copies of one image (the same file content) that carry different labels are flagged too: the
  minority's labels, or every copy's where no label holds a majority.
- **Duplicates**: samples whose images are the same file content (``hashes``, or the extraction's
  ``duplicate_of`` column) and feature-space
  neighbours closer than a small fraction of the typical nearest-neighbour distance (cleanlab's rule
  for near duplicates: 0.13 times the median), joined into groups. A group whose members lie in more
  than one ``split`` is a **leak**.
- **Outliers**: the mean distance to the k nearest neighbours, turned into a 0-1 score with cleanlab's
  transform; flagged beyond ``Q3 + 1.7 IQR`` (cleanlab Datalab's default for features). With the model's
  probabilities, samples cleanlab scores as out of distribution for the model are flagged too.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from embedviz.data.classes import natural_order
from embedviz.errors import DataError
from embedviz.hashing import sha256_json
from embedviz.layout import layout
from embedviz.progress import ProgressCallback, report

__all__ = ["Audit", "audit", "audit_key", "load_audit", "save_audit", "COLUMNS", "SOURCES", "KINDS",
           "class_summary", "cluster_summary", "confused_pairs", "model_probabilities", "flagged", "content_hashes",
           "write_report", "leave_out", "left_out_ids"]

VERSION = 2  # 2: copies of one image with different labels are label errors
#: Where the probabilities that find label errors come from (``auto``: the model's when it can).
SOURCES = ("auto", "from-model", "knn")
#: The report's columns, in order, after ``sample_id`` and ``label``.
COLUMNS = ("suggested_label", "label_issue_score", "is_label_issue", "duplicate_group", "duplicate_kind",
           "is_leak", "outlier_score", "is_outlier")
#: The kinds of finding, as the app lists them: (flag column, what it is called).
KINDS = {"label": ("is_label_issue", "Suspected label errors"), "duplicate": ("duplicate_group", "Duplicates"),
         "leak": ("is_leak", "Leaks across splits"), "outlier": ("is_outlier", "Outliers")}
#: Neighbours each sample's label is predicted from (k-NN probabilities) and outliers are scored on.
K_LABELS = 20
K_OUTLIER = 10
#: Near duplicates lie closer than this fraction of the median nearest-neighbour distance (cleanlab's).
NEAR = 0.13
#: Outliers lie beyond Q3 + (1 / THRESHOLD - 1) IQR of the mean neighbour distance (Datalab's default).
OUTLIER_THRESHOLD = 0.37
FROM_MODEL_MISSING = ("Probabilities from the model need a classifier whose classes are the labels (p_<class> "
                      "columns); use knn to predict labels from the features instead.")
#: A label issue score from which a sample whose suggested label differs is flagged, whatever cleanlab says.
CERTAIN = 0.85
#: Neighbours kept with the audit to say why a sample was flagged.
SHOWN_NEIGHBOURS = 8


@dataclass(frozen=True)
class Audit:
    """One row per sample (the feature set's order): the report's columns, and each sample's nearest
    neighbours (row numbers, nearest first) that explain its flags."""

    table: pd.DataFrame
    neighbours: np.ndarray
    source: str  # "from-model", "knn" or "" (no label errors looked for)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.table)

    def counts(self) -> dict[str, int]:
        """How many samples each kind flags (duplicates: samples in a group)."""
        return {kind: int(flagged(self.table, kind).sum()) for kind in KINDS}

    def ranked(self, kind: str) -> np.ndarray:
        """Row numbers of the samples ``kind`` flags, the most suspect first (duplicates by group)."""
        table = self.table
        rows = np.flatnonzero(flagged(table, kind))
        if kind == "label":
            return rows[np.argsort(-table["label_issue_score"].to_numpy()[rows], kind="stable")]
        if kind == "outlier":
            return rows[np.argsort(-table["outlier_score"].to_numpy()[rows], kind="stable")]
        groups = np.array([int(g[1:]) for g in table["duplicate_group"].to_numpy()[rows]])  # "d12" after "d2"
        return rows[np.lexsort((rows, groups))]


def flagged(table: pd.DataFrame, kind: str) -> np.ndarray:
    column = KINDS[kind][0]
    if kind == "duplicate":
        return table[column].notna().to_numpy()
    return table[column].fillna(False).to_numpy(dtype=bool)


def leave_out(table: pd.DataFrame) -> np.ndarray:
    """The rows a map without flagged samples leaves out: suspected label errors, outliers, and every
    member of a duplicate group but its first (one copy of each image stays)."""
    group = table["duplicate_group"]
    repeat = group.notna().to_numpy() & group.duplicated().to_numpy()
    return flagged(table, "label") | flagged(table, "outlier") | repeat


def left_out_ids(key: str) -> frozenset[str] | None:
    """The sample ids :func:`leave_out` names in the audit stored under ``key`` (``None``: not stored)."""
    try:
        return _left_out(key)
    except LookupError:
        return None


@functools.lru_cache(maxsize=8)
def _left_out(key: str) -> frozenset[str]:
    found = load_audit(key)
    if found is None:
        raise LookupError(key)  # not cached: it may be made later
    return frozenset(found.table["sample_id"][leave_out(found.table)])


def audit_key(features_key: str, source: str = "auto", hashes: Sequence[str] | None = None) -> str:
    """What identifies an audit: the feature set, where probabilities come from, and the images' bytes."""
    digest = "" if hashes is None else hashlib.sha256("\n".join(hashes).encode()).hexdigest()
    return sha256_json(["audit", VERSION, features_key, source, digest])[:32]


def _file(key: str) -> Path:
    """Where the audit ``key`` is kept; a key :func:`audit_key` did not make (a filter in a run's record
    names one) is refused before it becomes a path."""
    if not (len(key) == 32 and all(c in "0123456789abcdef" for c in key)):
        raise DataError("That audit key is not one this server made.")
    return layout().audits / f"{key}.parquet"


def save_audit(result: Audit, key: str) -> Path:
    """Keep ``result`` in the store under ``key`` (the report and the neighbours, one Parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _file(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = result.table.assign(_neighbours=list(result.neighbours))
    arrow = pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(
        {"embedviz": sha256_json([result.source]), "source": result.source, "seconds": str(result.seconds),
         "notes": "\n".join(result.notes)})
    tmp = path.with_name(f".{path.name}.{time.time_ns()}.tmp")
    pq.write_table(arrow, tmp)
    tmp.replace(path)
    return path


def load_audit(key: str) -> Audit | None:
    """The audit kept under ``key``, or ``None``."""
    import pyarrow.parquet as pq

    path = _file(key)
    if not path.exists():
        return None
    arrow = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (arrow.schema.metadata or {}).items()}
    table = arrow.to_pandas()
    neighbours = np.stack(table.pop("_neighbours").to_numpy()) if len(table) else np.zeros((0, 0), np.int64)
    notes = [n for n in meta.get("notes", "").split("\n") if n]
    return Audit(table, neighbours.astype(np.int64), meta.get("source", ""), float(meta.get("seconds", 0)), notes)


def model_probabilities(samples: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
    """The model's probabilities for every class (``p_<class>`` columns) and the class names, when its
    classes name every label; else ``None``."""
    columns = [c for c in samples.columns if c.startswith("p_")]
    if not columns or "label" not in samples.columns:
        return None
    names = [c[2:] for c in columns]
    labels = set(samples["label"].dropna().astype(str))
    if not labels or not labels <= set(names):
        return None
    try:
        probs = samples[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):  # p_ columns of a user's table that are not numbers
        return None
    if not np.isfinite(probs).all() or (probs < 0).any():
        return None
    return probs, names


def _check(features: np.ndarray, samples: pd.DataFrame) -> None:
    if len(features) != len(samples):
        raise DataError(f"The features have {len(features):,} rows but the table {len(samples):,}; they must match.")
    if len(features) < 3:
        raise DataError(f"An audit needs at least 3 samples; these features have {len(features)}.")
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        first = samples["sample_id"].iloc[int(np.flatnonzero(bad)[0])] if "sample_id" in samples else 0
        raise DataError(f"{int(bad.sum()):,} feature rows hold NaN or infinite values (the first: {first}); "
                        "extract them again or leave those samples out.")


def _knn_probabilities(codes: np.ndarray, classes: int, indices: np.ndarray) -> np.ndarray:
    """Each sample's class probabilities from its neighbours' labels (its own is not among them);
    neighbours without a label do not count, and a little smoothing keeps every class possible."""
    n, k = indices.shape
    counts = np.zeros((n, classes))
    theirs = codes[indices]
    known = theirs >= 0
    np.add.at(counts, (np.repeat(np.arange(n), k)[known.ravel()], theirs.ravel()[known.ravel()]), 1.0)
    smoothing = 0.1
    return (counts + smoothing) / (counts.sum(axis=1, keepdims=True) + smoothing * classes)


def _label_issues(samples: pd.DataFrame, indices: np.ndarray, source: str, notes: list[str]) -> tuple[
        str, pd.Series, np.ndarray, np.ndarray]:
    """(source used, suggested label, score 0-1 higher = more likely wrong, flag)."""
    n = len(samples)
    none = ("", pd.Series(pd.NA, index=range(n), dtype="string"), np.full(n, np.nan), np.zeros(n, dtype=bool))
    if "label" not in samples.columns or samples["label"].isna().all():
        notes.append("No labels: label errors were not looked for (duplicates and outliers were).")
        return none
    labels = samples["label"].astype("string")
    known = labels.notna().to_numpy()
    model = model_probabilities(samples)
    if source == "from-model" and model is None:
        raise DataError(FROM_MODEL_MISSING)
    if source == "auto":
        source = "from-model" if model is not None else "knn"
    if source == "from-model":
        probs, classes = model
    else:
        classes = natural_order(labels[known].unique())
    if len(set(labels[known])) < 2:
        notes.append(f"Every labelled sample has the label {str(labels[known].iloc[0])[:80]}: with one class there "
                     "are no label errors to find.")
        return none
    lookup = {name: i for i, name in enumerate(classes)}
    codes = np.array([lookup.get(v, -1) if v is not pd.NA else -1 for v in labels.to_numpy(dtype=object)])
    if source == "knn":
        probs = _knn_probabilities(codes, len(classes), indices[:, :K_LABELS])
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    rows = np.flatnonzero(known)
    sub, given = probs[rows], codes[rows]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    present = np.unique(given)  # cleanlab wants every class it is given to appear among the labels
    sub = sub[:, present] / np.clip(sub[:, present].sum(axis=1, keepdims=True), 1e-12, None)
    given = np.searchsorted(present, given)
    quality = get_label_quality_scores(given, sub)
    issues = find_label_issues(given, sub, filter_by="prune_by_noise_rate", n_jobs=1) if len(present) > 1 else \
        np.zeros(len(rows), dtype=bool)
    score = np.full(n, np.nan)
    score[rows] = 1.0 - quality
    # cleanlab counts a sample toward the error total only when its probability for the suggested class
    # reaches that class's average; a confident model (or a few errors side by side, for k-NN) puts some
    # plain errors just under it. Those are flagged too: another class is suggested and the given one has
    # at most 15% (for k-NN: at most 2 of 20 neighbours share the label). On the demo with 5% flipped,
    # recall 94-96% -> 99-100%; on the clean demo 4 (k-NN) and 10 (model) samples are flagged this way.
    plain = (sub.argmax(axis=1) != given) & (1.0 - quality >= CERTAIN)
    flag = np.zeros(n, dtype=bool)
    flag[rows] = issues | plain
    suggested = pd.Series(pd.NA, index=range(n), dtype="string")
    names = np.asarray(classes, dtype=object)[present]
    suggested.iloc[rows] = names[sub.argmax(axis=1)]
    return source, suggested, score, flag


def _groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of ``pairs`` (rows joined), numbered from 0 in order of their first row; -1
    for a row in no pair."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    group = np.full(n, -1)
    if not len(pairs):
        return group
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members = np.zeros(n, dtype=bool)
    members[pairs.ravel()] = True
    _, first = np.unique(component[members], return_index=True)
    order = np.argsort(np.flatnonzero(members)[first])
    numbering = dict(zip(np.unique(component[members])[order], range(len(order))))
    group[members] = [numbering[c] for c in component[members]]
    return group


def _duplicates(distances: np.ndarray, indices: np.ndarray, hashes: Sequence[str] | None,
                split: pd.Series | None) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """(group name or NA, "exact"/"near" or NA, leak flag)."""
    n = len(indices)
    nearest = distances[:, 0]
    radius = NEAR * max(float(np.median(nearest)), 1e-12)
    near = distances < radius
    rows = np.repeat(np.arange(n), indices.shape[1])[near.ravel()]
    pairs = [np.stack([rows, indices[near]], axis=1)]
    exact = np.zeros(n, dtype=bool)
    if hashes is not None:
        table = pd.DataFrame({"hash": list(hashes), "row": np.arange(n)})
        table = table[(table["hash"] != "missing") & table["hash"].notna()]
        first = table.groupby("hash")["row"].transform("min").to_numpy()
        repeated = first != table["row"].to_numpy()
        pairs.append(np.stack([first[repeated], table["row"].to_numpy()[repeated]], axis=1))
        exact[table["row"].to_numpy()[table.duplicated("hash", keep=False).to_numpy()]] = True
    group = _groups(n, np.concatenate(pairs).astype(np.int64))
    names = pd.Series(pd.NA, index=range(n), dtype="string")
    kind = pd.Series(pd.NA, index=range(n), dtype="string")
    leak = np.zeros(n, dtype=bool)
    inside = group >= 0
    if inside.any():
        names[inside] = [f"d{g}" for g in group[inside]]
        frame = pd.DataFrame({"group": group[inside], "exact": exact[inside]})
        all_exact = frame.groupby("group")["exact"].transform("all").to_numpy()
        kind[inside] = np.where(all_exact, "exact", "near")
        if split is not None:
            values = split.astype("string").to_numpy(dtype=object)[inside]
            frame["split"] = [v if v is not pd.NA else None for v in values]
            spread = frame.groupby("group")["split"].transform("nunique").to_numpy()
            leak[inside] = spread > 1
    return names, kind, leak


def _conflicting_copies(samples: pd.DataFrame, group: pd.Series, kind: pd.Series, suggested: pd.Series,
                        score: np.ndarray, flag: np.ndarray, notes: list[str]) -> None:
    """Copies of one image (an exact duplicate group) labelled differently: one label is wrong whatever
    the neighbours say. The copies outside the group's most common label are flagged with it suggested
    (score at least :data:`CERTAIN`); where no label is the most common, every copy is flagged with
    another copy's label suggested (score at least 0.5). ``suggested``, ``score`` and ``flag`` change
    in place."""
    if "label" not in samples.columns:
        return
    frame = pd.DataFrame({"group": group.to_numpy(), "label": samples["label"].astype("string").to_numpy()})
    frame = frame[(kind == "exact").fillna(False).to_numpy() & frame["label"].notna().to_numpy()]
    conflicting = 0
    for _, members in frame.groupby("group", sort=False):
        counts = members["label"].value_counts()
        if len(counts) < 2:
            continue
        tie = counts.iloc[0] == counts.iloc[1]
        for row, label in members["label"].items():
            if label == counts.index[0] and not tie:
                continue
            others = counts.drop(label)
            suggested.iloc[row] = others.index[0]
            score[row] = max(np.nan_to_num(score[row]), 0.5 if tie else CERTAIN)
            flag[row] = True
            conflicting += 1
    if conflicting:
        notes.append(f"{conflicting:,} copies of an image carry a different label from another copy: flagged as "
                     "label errors.")


def _outliers(distances: np.ndarray, samples: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.outlier import transform_distances_to_scores
    from scipy.stats import iqr

    mean = distances[:, :K_OUTLIER].mean(axis=1).astype(np.float64)
    scale = max(float(np.median(mean)), 100 * np.finfo(np.float64).eps)
    score = 1.0 - transform_distances_to_scores(mean, 1, scale)  # higher = more unusual
    flag = mean > np.percentile(mean, 75) + (1 / OUTLIER_THRESHOLD - 1) * iqr(mean)
    if source == "from-model":
        from cleanlab.outlier import OutOfDistribution

        probs, _ = model_probabilities(samples)
        probs = probs / probs.sum(axis=1, keepdims=True)
        model_score = OutOfDistribution({"adjust_pred_probs": False}).score(pred_probs=probs)
        flag |= model_score < 0.13 * np.median(model_score)  # Datalab's rule for probabilities
    return score, flag


def audit(features: np.ndarray, samples: pd.DataFrame, *, features_key: str | None = None,
          source: str = "auto", hashes: Sequence[str] | None = None,
          progress: ProgressCallback | None = None) -> Audit:
    """Audit ``features`` (a row per sample of ``samples``: ``sample_id``, ``label``, ``split``, the
    model's ``p_<class>`` columns, all optional but the first). ``hashes``: each image's content hash
    ("missing" where unknown) for exact duplicates. With ``features_key`` the neighbour graph is the
    reducers' cached one.

    Raises:
        DataError: features with NaN, fewer than 3 samples, or ``from-model`` without the model's classes.
    """
    from embedviz.maps.reducers.neighbours import GRAPH_K, neighbour_graph, prepare, prepared_key

    if source not in SOURCES:
        raise DataError(f"Probabilities come from one of {', '.join(SOURCES)}, not {source!r}.")
    start = time.perf_counter()
    x = np.asarray(features)
    _check(x, samples)
    if hashes is not None and len(hashes) != len(x):
        raise DataError("There must be one image hash per sample.")
    if source == "from-model" and model_probabilities(samples) is None:
        raise DataError(FROM_MODEL_MISSING)
    if hashes is None and "duplicate_of" in samples.columns:  # extraction named the copies it found
        hashes = samples["duplicate_of"].astype("string").fillna(samples["sample_id"].astype("string")).tolist()
    steps = 4
    report(progress, 0, steps, f"finding every sample's nearest neighbours{_estimate(len(x))}")
    z = prepare(x, "none", 50, 0, key=features_key)
    key = None if features_key is None else prepared_key(features_key, "none", 50, 0)
    graph = neighbour_graph(z, GRAPH_K, "euclidean", 0, key=key)
    indices, distances = graph.first(max(K_LABELS, K_OUTLIER, SHOWN_NEIGHBOURS))
    notes: list[str] = []
    report(progress, 1, steps, "label errors")
    used, suggested, score, is_issue = _label_issues(samples, indices, source, notes)
    report(progress, 2, steps, "duplicates and leaks")
    split = samples["split"] if "split" in samples.columns else None
    group, kind, leak = _duplicates(distances, indices, hashes, split)
    _conflicting_copies(samples, group, kind, suggested, score, is_issue, notes)
    report(progress, 3, steps, "outliers")
    outlier, is_outlier = _outliers(distances, samples, used)
    report(progress, 4, steps, "done")
    label = samples["label"].astype("string") if "label" in samples.columns else \
        pd.Series(pd.NA, index=range(len(x)), dtype="string")
    table = pd.DataFrame({
        "sample_id": samples["sample_id"].astype(str).to_numpy(),
        "label": label.to_numpy(), "suggested_label": suggested.to_numpy(),
        "label_issue_score": score, "is_label_issue": is_issue,
        "duplicate_group": group.to_numpy(), "duplicate_kind": kind.to_numpy(), "is_leak": leak,
        "outlier_score": outlier, "is_outlier": is_outlier})
    if "path" in samples.columns:
        table.insert(1, "path", samples["path"].astype("string").to_numpy())
    if used:
        notes.insert(0, "Label errors from the model's predicted probabilities." if used == "from-model" else
                     f"Label errors from each sample's {K_LABELS} nearest neighbours' labels (k-NN on the features).")
    if not graph.exact:
        notes.append("Neighbours are approximate (Annoy) on this many samples.")
    return Audit(table, indices[:, :SHOWN_NEIGHBOURS].copy(), used, time.perf_counter() - start, notes)


def _estimate(n: int) -> str:
    """The neighbour graph's time, roughly, as measured here (exact: 8 s at 50,000 points on 2 cores,
    growing with the square; Annoy above 150,000: about 30 s per 50,000), when it is worth saying."""
    from embedviz.maps.reducers.neighbours import EXACT_LIMIT

    seconds = 8 * (n / 50_000) ** 2 if n <= EXACT_LIMIT else 30 * n / 50_000
    return f" (about {seconds:,.0f} s unless made before)" if seconds >= 5 else ""


def class_summary(result: Audit) -> pd.DataFrame:
    """Per label: how many samples, how many each kind flags, and the label most often suggested instead."""
    table = result.table.assign(label=result.table["label"].fillna("(none)"))
    summary = table.groupby("label", sort=False).agg(
        samples=("sample_id", "size"), label_issues=("is_label_issue", "sum"),
        duplicates=("duplicate_group", "count"), leaks=("is_leak", "sum"), outliers=("is_outlier", "sum"))
    issues = table[table["is_label_issue"]]
    instead = issues.groupby("label")["suggested_label"].agg(
        lambda s: s.value_counts().index[0] if s.notna().any() else pd.NA)
    summary["most_suggested_instead"] = instead.reindex(summary.index).astype("string")
    summary = summary.reindex(natural_order(summary.index))
    return summary.reset_index().rename(columns={"index": "label"})


def cluster_summary(result: Audit, clusters: Sequence[str]) -> pd.DataFrame:
    """Per cluster (a name per sample): samples, and the share of them each kind flags."""
    table = result.table.assign(cluster=list(clusters))
    summary = table.groupby("cluster").agg(
        samples=("sample_id", "size"), label_issues=("is_label_issue", "sum"),
        duplicates=("duplicate_group", "count"), leaks=("is_leak", "sum"), outliers=("is_outlier", "sum"))
    summary["flagged_share"] = (table.assign(any=_any_flag(result.table)).groupby("cluster")["any"].mean())
    return summary.reindex(natural_order(summary.index)).reset_index()


def _any_flag(table: pd.DataFrame) -> np.ndarray:
    return np.logical_or.reduce([flagged(table, kind) for kind in KINDS])


def confused_pairs(result: Audit, top: int = 10) -> pd.DataFrame:
    """The (label, suggested label) pairs among suspected label errors, most frequent first."""
    issues = result.table[result.table["is_label_issue"]]
    if issues.empty:
        return pd.DataFrame(columns=["label", "suggested_label", "samples"])
    pairs = issues.groupby(["label", "suggested_label"]).size().rename("samples").reset_index()
    return pairs.sort_values("samples", ascending=False, kind="stable").head(top).reset_index(drop=True)


def content_hashes(root: Path, paths: Sequence[object]) -> list[str]:
    """SHA-256 of each image under ``root`` ("missing" for no path, an unreadable file, or a path that
    leads outside ``root``: a table's paths are not followed elsewhere)."""
    from embedviz.hashing import sha256_file

    base = Path(root).resolve()
    hashes = []
    for rel in paths:
        if rel is None or pd.isna(rel):
            hashes.append("missing")
            continue
        path = (base / str(rel)).resolve()
        try:
            hashes.append(sha256_file(path) if path.is_relative_to(base) and path.is_file() else "missing")
        except OSError:
            hashes.append("missing")
    return hashes


def write_report(result: Audit, out: str | Path, clusters: Sequence[str] | None = None) -> Path:
    """The report as ``.csv``, ``.parquet`` or ``.html`` (the summaries, per cluster too with ``clusters``:
    a name per sample, and every flagged sample; text from the data is escaped)."""
    out = Path(out).expanduser()
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".html"):
        raise DataError(f"Cannot write {out.name}: the report must end in .csv, .parquet or .html.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        from embedviz.explore.export import to_csv

        out.write_text(to_csv(result.table), encoding="utf-8")  # a label like =1+1 is not run by a spreadsheet
    elif suffix == ".parquet":
        result.table.to_parquet(out, index=False)
    else:
        out.write_text(_html(result, clusters), encoding="utf-8")
    return out


def _html(result: Audit, clusters: Sequence[str] | None = None) -> str:
    import html

    counts = result.counts()
    parts = ["<!doctype html><meta charset='utf-8'><title>embedviz audit</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}</style>",
             f"<h1>Audit of {len(result):,} samples</h1><ul>"]
    parts += [f"<li>{html.escape(KINDS[k][1])}: {v:,}</li>" for k, v in counts.items()]
    parts += ["</ul>"] + [f"<p>{html.escape(note)}</p>" for note in result.notes]
    parts += ["<h2>Per class</h2>", class_summary(result).to_html(index=False, escape=True, na_rep="")]
    parts += ["<h2>Labels most often suggested instead</h2>",
              confused_pairs(result).to_html(index=False, escape=True, na_rep="")]
    if clusters is not None:
        parts += ["<h2>Per cluster</h2>", cluster_summary(result, [str(c) for c in clusters]).to_html(
            index=False, escape=True, na_rep="", float_format="%.3f")]
    for kind, (_, title) in KINDS.items():
        rows = result.ranked(kind)
        parts += [f"<h2>{html.escape(title)} ({len(rows):,})</h2>",
                  result.table.iloc[rows].to_html(index=False, escape=True, na_rep="", float_format="%.3f")]
    return "\n".join(parts)
