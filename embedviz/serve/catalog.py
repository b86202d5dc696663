"""Runs: every extraction and every map, with who made it, when, from what and how long it took.

The catalog is one SQLite file, ``$EMBEDVIZ_HOME/catalog.sqlite`` (no server; WAL mode, so pages
read while a job writes). A run records what is needed to open it again in a fresh session, never
the data itself: for an extraction, the dataset and model choices and the hashes that key its
features; for a map, its extraction run plus the reducer settings and the key of the map on disk.

Runs are private to their owner unless published. A shared link carries a run's id, never a
path, so a link cannot open files its viewer could not choose, and a private run stays private.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from embedviz.data.spec import DatasetSpec
from embedviz.errors import EmbedVizError
from embedviz.extract.spec import ModelSpec
from embedviz.layout import Layout, home_dir, layout

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "Catalog", "RunNotFound", "RunNotVisible", "KINDS", "MARKS", "Mark", "runs_table", "is_run_id",
           "unavailable", "made_from", "describe_run"]

KINDS = ("extraction", "map")
log = logging.getLogger(__name__)
_RUN_ID = re.compile(r"[0-9a-f]{1,64}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    parent TEXT,
    owner TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    created REAL NOT NULL,
    opened REAL NOT NULL,
    title TEXT NOT NULL,
    inputs TEXT NOT NULL,
    params TEXT NOT NULL,
    seconds REAL NOT NULL,
    n_points INTEGER NOT NULL,
    published INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    dedupe TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner, dedupe);
CREATE INDEX IF NOT EXISTS runs_published ON runs (published);
CREATE TABLE IF NOT EXISTS marks (
    owner TEXT NOT NULL,
    features TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    action TEXT NOT NULL,
    label TEXT,
    was TEXT,
    path TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (owner, features, sample_id)
);
"""

#: What a user may decide about a sample the audit flags (:mod:`embedviz.explore.audit`).
MARKS = ("keep", "relabel", "drop")


class RunNotFound(EmbedVizError):
    """No run has this id (it was deleted, or the link is mistyped)."""


class RunNotVisible(EmbedVizError):
    """The run exists but is another user's private run."""


def is_run_id(text: str) -> bool:
    """Whether ``text`` looks like a run id (lower-case hex), so it can be named in a message as is."""
    return bool(_RUN_ID.fullmatch(text or ""))


def unavailable(run_id: str) -> str:
    """The one sentence for a run the viewer may not open, whether it is gone or private, so that
    ids cannot be probed; an id that is not hex is not repeated (it came from someone's link)."""
    named = f"Run {run_id}" if is_run_id(run_id) else "The run in this link"
    return (f"{named} cannot be opened: it was deleted, or it is private to the person who made it (they can "
            "publish it on the Runs page).")


@dataclass(frozen=True)
class Run:
    """One extraction or map, as the catalog keeps it."""

    id: str
    kind: str
    owner: str
    owner_name: str
    created: float
    opened: float
    title: str
    inputs: dict[str, Any]
    params: dict[str, Any]
    seconds: float
    n_points: int
    published: bool = False
    pinned: bool = False
    parent: str | None = None

    def visible_to(self, viewer: str) -> bool:
        return self.published or self.owner == viewer

    @property
    def features_key(self) -> str:
        return str(self.inputs.get("features", ""))


@dataclass(frozen=True)
class Mark:
    """A user's decision about one sample: keep it, relabel it to ``label``, or drop it; with the label it
    had (``was``) and its file (``path``), so the exports need nothing else."""

    action: str
    label: str | None = None
    was: str | None = None
    path: str | None = None


def _row(row: sqlite3.Row) -> Run:
    return Run(row["id"], row["kind"], row["owner"], row["owner_name"], row["created"], row["opened"], row["title"],
               json.loads(row["inputs"]), json.loads(row["params"]), row["seconds"], row["n_points"],
               bool(row["published"]), bool(row["pinned"]), row["parent"])


class Catalog:
    """The runs of one ``$EMBEDVIZ_HOME``; every call opens its own connection (thread-safe)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else layout().catalog
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def record(self, kind: str, *, owner: str, owner_name: str, title: str, inputs: dict[str, Any],
               params: dict[str, Any], seconds: float = 0.0, n_points: int = 0, parent: str | None = None,
               dedupe: str = "") -> Run:
        """Add a run, or return the owner's run with the same ``dedupe`` key (the same map opened
        again is the same run; its ``opened`` time moves)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        now = time.time()
        with self._connect() as db:
            if dedupe:
                found = db.execute("SELECT * FROM runs WHERE owner = ? AND dedupe = ? AND kind = ?",
                                   (owner, dedupe, kind)).fetchone()
                if found is not None:
                    db.execute("UPDATE runs SET opened = ? WHERE id = ?", (now, found["id"]))
                    return _row(found)
            run_id = uuid.uuid4().hex[:12]
            db.execute(
                "INSERT INTO runs (id, kind, parent, owner, owner_name, created, opened, title, inputs, params, "
                "seconds, n_points, dedupe) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, parent, owner, owner_name, now, now, title, json.dumps(inputs, sort_keys=True),
                 json.dumps(params, sort_keys=True, default=str), float(seconds), int(n_points), dedupe))
            log.info("run %s recorded: %s %r by %s (parent %s)", run_id, kind, title, owner, parent or "none")
            return _row(db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

    def get(self, run_id: str) -> Run | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _row(row) if row is not None else None

    def open(self, run_id: str, viewer: str) -> Run:
        """The run, if ``viewer`` may see it; raises with a sentence to show otherwise."""
        run = self.get(run_id) if is_run_id(run_id) else None
        if run is None:
            raise RunNotFound(unavailable(run_id))
        if not run.visible_to(viewer):
            raise RunNotVisible(unavailable(run_id))
        with self._connect() as db:
            db.execute("UPDATE runs SET opened = ? WHERE id = ?", (time.time(), run_id))
        return run

    def runs(self, viewer: str, *, kind: str | None = None, mine_only: bool = False) -> list[Run]:
        """Runs ``viewer`` may see (their own and published ones), newest first."""
        query = "SELECT * FROM runs WHERE (owner = ?" + ("" if mine_only else " OR published = 1") + ")"
        args: list[Any] = [viewer]
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        return [_row(r) for r in rows]

    def all_runs(self) -> list[Run]:
        """Every run, whoever owns it (for the store's housekeeping, never shown to a user)."""
        with self._connect() as db:
            return [_row(r) for r in db.execute("SELECT * FROM runs ORDER BY created DESC").fetchall()]

    def _owned(self, db: sqlite3.Connection, run_id: str, viewer: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(unavailable(run_id))
        if row["owner"] != viewer:
            log.warning("refused: %s tried to change run %s of %s", viewer, run_id, row["owner"])
            if not row["published"]:  # someone else's private run: as if it did not exist
                raise RunNotVisible(unavailable(run_id))
            raise RunNotVisible(f"Run {run_id} belongs to {row['owner_name']}; only they can change or delete it.")
        return row

    def publish(self, run_id: str, viewer: str, published: bool = True) -> None:
        """Let everyone with the link (and the Runs page) see the run; a map publishes its extraction."""
        with self._connect() as db:
            row = self._owned(db, run_id, viewer)
            ids = [run_id] + ([row["parent"]] if published and row["parent"] else [])
            db.executemany("UPDATE runs SET published = ? WHERE id = ? AND owner = ?",
                           [(int(published), i, viewer) for i in ids])
        log.info("run%s %s %s by %s", "s" if len(ids) > 1 else "", ", ".join(ids),
                 "published" if published else "unpublished", viewer)

    def pin(self, run_id: str, viewer: str, pinned: bool = True) -> None:
        """A pinned run's files are never evicted when the store is over its cap."""
        with self._connect() as db:
            self._owned(db, run_id, viewer)
            db.execute("UPDATE runs SET pinned = ? WHERE id = ?", (int(pinned), run_id))
        log.info("run %s %s by %s", run_id, "pinned" if pinned else "unpinned", viewer)

    def delete(self, run_id: str, viewer: str) -> list[Run]:
        """Delete the run (and, for an extraction, the viewer's maps made from it); returns what was
        deleted, so the caller can drop files no remaining run needs."""
        with self._connect() as db:
            self._owned(db, run_id, viewer)
            rows = db.execute("SELECT * FROM runs WHERE (id = ? OR parent = ?) AND owner = ?",
                              (run_id, run_id, viewer)).fetchall()
            db.executemany("DELETE FROM runs WHERE id = ?", [(r["id"],) for r in rows])
        log.info("runs deleted by %s: %s", viewer, ", ".join(r["id"] for r in rows))
        return [_row(r) for r in rows]

    def mark(self, owner: str, features_key: str, sample_id: str, mark: Mark | None) -> None:
        """Keep ``owner``'s decision about a sample of the features ``features_key`` (``None``: forget it).
        Marks belong to their owner's runs of these features: others read them only through a run
        they may open (:meth:`marks`), and never write them."""
        if mark is not None and mark.action not in MARKS:
            raise ValueError(f"a mark is one of {MARKS}, not {mark.action!r}")
        if mark is not None and mark.action == "relabel" and not (mark.label or "").strip():
            raise EmbedVizError("Name the label to relabel it to.")
        if mark is not None and any(len(v or "") > 4096 for v in (mark.label, mark.was, mark.path)):
            raise EmbedVizError("A label or path this long cannot be kept in a mark (at most 4,096 characters).")
        with self._connect() as db:
            if mark is None:
                db.execute("DELETE FROM marks WHERE owner = ? AND features = ? AND sample_id = ?",
                           (owner, features_key, sample_id))
            else:
                db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (owner, features_key, sample_id, mark.action,
                            mark.label if mark.action == "relabel" else None, mark.was, mark.path, time.time()))

    def marks(self, owner: str, features_key: str) -> dict[str, Mark]:
        """``owner``'s marks on the features ``features_key``, by sample id."""
        with self._connect() as db:
            rows = db.execute("SELECT sample_id, action, label, was, path FROM marks WHERE owner = ? AND features = ? "
                              "ORDER BY at", (owner, features_key)).fetchall()
        return {r["sample_id"]: Mark(r["action"], r["label"], r["was"], r["path"]) for r in rows}

    def referenced(self) -> tuple[set[str], set[str]]:
        """Feature keys and map keys some run still refers to."""
        features, maps = set(), set()
        for run in self.all_runs():
            if run.features_key:
                features.add(run.features_key)
            if run.inputs.get("map"):
                maps.add(str(run.inputs["map"]))
        return features, maps

    def protected(self) -> tuple[set[str], set[str]]:
        """Feature keys and map keys that eviction must keep: those of pinned or published runs."""
        features, maps = set(), set()
        for run in self.all_runs():
            if run.pinned or run.published:
                features.add(run.features_key)
                if run.inputs.get("map"):
                    maps.add(str(run.inputs["map"]))
                if run.inputs.get("source_features"):
                    features.add(str(run.inputs["source_features"]))
        return features, maps


def _without_paths(value: Any, homes: tuple[str, ...]) -> Any:
    """``value`` with every absolute path of the server replaced by its file name (an upload's
    workspace by "an upload")."""
    if isinstance(value, dict):
        return {k: _without_paths(v, homes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_paths(v, homes) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        if any(value == h or value.startswith(os.path.join(Layout(Path(h)).workspaces, "")) for h in homes):
            return "an upload"
        return os.path.basename(value.rstrip("/\\")) or "a folder on the server"
    return value


def made_from(run: Run, paths: bool = False) -> dict[str, Any]:
    """What ``run`` was made from, as shown to people: its inputs and parameters, with the server's
    absolute paths reduced to file names unless ``paths`` (an operator looking)."""
    # the view's colouring is kept to open the run as it was seen, not part of what made it
    found = {"inputs": run.inputs, "parameters": {k: v for k, v in run.params.items() if k not in ("token", "color")}}
    home = home_dir()
    return found if paths else _without_paths(found, (str(home), str(home.resolve())))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _data_name(dataset: dict[str, Any] | None) -> str:
    """The data a run was made from, by name (never the server's path to it)."""
    try:
        return DatasetSpec.from_dict(dataset).name()
    except EmbedVizError:  # a run recorded by a later version: say what is sure
        return "images"


def _model_name(model: dict[str, Any] | None) -> str:
    """``demo CNN (early checkpoint)``, ``raw pixels``, ``resnet18 (weights.pth)``, ..."""
    try:
        return ModelSpec.from_dict(model).name()
    except EmbedVizError:
        return str((model or {}).get("architecture", "?"))


def _reducer_name(reducer: dict[str, Any]) -> str:
    """``t-SNE, perplexity 10, metric cosine``: the method and the parameters set away from their
    defaults (upstream names, so they read as in the Reduce page's sliders)."""
    from embedviz.maps.reducers import REDUCERS, param_specs

    method = str(reducer.get("method", "?"))
    if method not in REDUCERS:
        return method
    defaults = {spec.name: spec.default for spec in param_specs(REDUCERS[method].params_class)}
    changed = [f"{name} {_number(value)}" for name, value in sorted((reducer.get("params") or {}).items())
               if name not in defaults or value != defaults[name]]
    label = REDUCERS[method].label
    return ", ".join([label, *changed]) if changed else f"{label} (default settings)"


def describe_run(run: Run) -> str:
    """What sets ``run`` apart, in one line for people: for a map, the method and the parameters changed
    from their defaults, dimensions, seed and sample; for both kinds, the layer, model and data.

    Runs with the same title (the same data, model and method) differ here, where before only their
    times did; the whole record is still under "Made from"."""
    params = run.params
    parts = []
    reducer = params.get("reducer")
    if run.kind == "map" and isinstance(reducer, dict):
        parts.append(_reducer_name(reducer))
        parts.append(f"{reducer.get('n_components', 2)}-D, seed {reducer.get('random_state', 0)}")
        sample = params.get("sample")
        if sample:
            parts.append(f"fitted on {int(sample['size']):,} points" + (
                f" stratified by {sample['stratify_by']}" if sample.get("stratify_by") else ""))
        filters = params.get("map_filters") or []
        if filters:
            parts.append(f"only the points {len(filters)} filter{'s' if len(filters) != 1 else ''} kept")
        if params.get("warm") is False:
            parts.append("started fresh")
    layer, model = params.get("layer"), _model_name(params.get("model"))
    parts.append(f"layer {layer} of {model}" if layer and not model.startswith("raw pixels") else model)
    parts.append(_data_name(params.get("dataset")))
    if params.get("classes"):
        parts.append(f"class names from {os.path.basename(str(params['classes']))}")
    return " · ".join(parts)


def runs_table(runs: list[Run], viewer: str) -> "pd.DataFrame":
    """The runs as a table for people: newest first, whose, when, how big, how long, shared or not."""
    import pandas as pd

    rows = []
    for run in runs:
        rows.append({
            "run": run.id,
            "what": "map" if run.kind == "map" else "extraction",
            "title": run.title,
            "details": describe_run(run),
            "by": "you" if run.owner == viewer else run.owner_name,
            "made": pd.Timestamp(run.created, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC"),
            "points": run.n_points,
            "seconds": round(run.seconds, 1),
            "shared": "published" if run.published else "private",
            "pinned": run.pinned,
        })
    columns = ["run", "what", "title", "details", "by", "made", "points", "seconds", "shared", "pinned"]
    return pd.DataFrame(rows, columns=columns)
