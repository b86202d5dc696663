"""The data audit: flipped labels found on the demo, re-encoded photos found as near duplicates, and its cost at scale.

In one invocation, each part against a baseline measured beside it:

1. Label errors. The demo's features and model (scikit-learn's digits through the demo CNN, 1,797
   samples) with a seeded ``--noise`` share of the labels flipped to another class. For
   ``source="from-model"`` and ``source="knn"``: the share of the flipped samples among the top N by
   ``label_issue_score`` (N = how many were flipped), how many ``is_label_issue`` flags and their
   precision. Baseline, the notebook way: out-of-fold probabilities from
   ``cross_val_predict(StandardScaler + LogisticRegression, cv=5)`` on the same features, ranked by
   self-confidence (and cleanlab's ``find_label_issues`` on them, for its flags).
2. Near duplicates. ``--images`` photos (400x300 JPEGs, the extraction benchmark's) and ``--copies`` of
   them re-encoded at JPEG quality 70 and resized to 90%, in the same folders; features from raw pixels
   and from the demo CNN, content hashes passed too. Of the true pairs, the share found (both in one
   ``duplicate_group``), and the pairs reported that are not true pairs. Baseline: the content hashes
   alone (what a notebook's md5 of every file finds).
3. Scale. For each of ``--sizes``, ``--dim`` float32 features (the reducer benchmark's seeded mixture of
   20 classes, 5% of labels flipped), audited in a fresh process with a fresh store (the neighbour graph
   computed, then saved as the app does): seconds of ``audit()``, the process's peak RSS, and the same
   audit again once the graph is on disk (as after a map).

Targets (issue 20): top-N recall >= 90% with both sources; >= 95% of pairs found, <= 5% of reported pairs
false; 10,000 x 512 in <= 30 s, 100,000 x 512 in <= 5 min, peak memory <= 4 GiB.
Run: python -m benchmarks audit [--noise 0.05] [--images 2000] [--copies 200] [--sizes 10000,100000]
     [--dim 512] [--only labels|duplicates|scale] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as ``python benchmarks/audit.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Seconds allowed per size (issue 20); other sizes are measured without a target.
TIME_TARGETS = {10_000: 30.0, 100_000: 300.0}
MEMORY_TARGET_MIB = 4 * 1024


def extract(data: str | Path, model: str, out: Path, home: str) -> None:
    """``python -m embedviz extract`` in a fresh process, as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "embedviz", "extract", "--data", str(data), "--model", model,
                           "--out", str(out)], cwd=ROOT, env={**os.environ, "EMBEDVIZ_HOME": home},
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"extract --data {data} --model {model} failed:\n{done.stderr[-2000:]}")


def flip(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` with a seeded ``share`` of them changed to another class, and which rows changed."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    rows = np.sort(rng.choice(len(labels), round(share * len(labels)), replace=False))
    noisy = labels.copy()
    for row in rows:
        others = classes[classes != labels[row]]
        noisy[row] = others[rng.integers(0, len(others))]
    return noisy, rows


def scored(score: np.ndarray, flags: np.ndarray | None, truth: np.ndarray) -> dict:
    """Top-N recall (N = true errors), and the flags' count, precision and recall."""
    n = int(truth.sum())
    top = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")[:n]
    out = {"flipped": n, "top_n_recall": float(truth[top].mean())}
    if flags is not None:
        out |= {"flagged": int(flags.sum()), "precision": float(truth[flags].mean()) if flags.any() else float("nan"),
                "flag_recall": float(truth[flags].sum() / n)}
    return out


def labels_part(noise: float, tmp: Path, home: str) -> dict:
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from embedviz.data.precomputed import load_feature_set
    from embedviz.explore.audit import audit

    start = time.perf_counter()
    extract("demo", "demo", tmp / "demo", home)
    features = load_feature_set(tmp / "demo")
    made_s = time.perf_counter() - start
    x, samples = np.asarray(features.features), features.samples
    true = samples["label"].astype(str).to_numpy()
    noisy, rows = flip(true, noise, seed=0)
    truth = np.zeros(len(true), dtype=bool)
    truth[rows] = True
    print(f"\n## Label errors: the demo ({len(x):,} x {x.shape[1]}, extracted in {made_s:.1f} s), "
          f"{len(rows)} labels ({noise:.0%}) flipped, seed 0\n")
    print("| what ranks the samples | seconds | flipped in the top N | flagged | precision of the flags "
          "| flipped flagged | suggested label right |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    figures: dict = {"samples": len(x), "dim": x.shape[1], "flipped": len(rows)}
    frame = samples.assign(label=noisy)
    for source in ("from-model", "knn"):
        result = audit(x, frame, features_key=features.key or None, source=source)
        table = result.table
        row = scored(table["label_issue_score"].to_numpy(), table["is_label_issue"].to_numpy(), truth)
        row["seconds"] = result.seconds
        row["suggested_right"] = float((table["suggested_label"].to_numpy(dtype=object)[rows] == true[rows]).mean())
        figures[source] = row
        print(f"| embedviz audit, source={source} | {row['seconds']:.2f} | **{row['top_n_recall']:.1%}** "
              f"| {row['flagged']} | {row['precision']:.1%} | {row['flag_recall']:.1%} "
              f"| {row['suggested_right']:.1%} |")
    classes = np.unique(noisy)
    given = np.searchsorted(classes, noisy)
    start = time.perf_counter()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probs = cross_val_predict(model, x, given, cv=5, method="predict_proba")
    baseline_s = time.perf_counter() - start
    confidence = probs[np.arange(len(given)), given]
    flags = find_label_issues(given, probs, filter_by="prune_by_noise_rate", n_jobs=1)
    row = scored(1.0 - confidence, flags, truth)
    row["seconds"] = baseline_s
    row["suggested_right"] = float((classes[probs.argmax(axis=1)][rows] == true[rows]).mean())
    figures["baseline_logistic_cv"] = row
    print(f"| baseline: cross_val_predict(LogisticRegression), self-confidence (flags: cleanlab on them) "
          f"| {row['seconds']:.2f} | {row['top_n_recall']:.1%} | {row['flagged']} | {row['precision']:.1%} "
          f"| {row['flag_recall']:.1%} | {row['suggested_right']:.1%} |")
    met = all(figures[s]["top_n_recall"] >= 0.9 for s in ("from-model", "knn"))
    print(f"\nTarget (>= 90% of the flipped in the top N, both sources): {'met' if met else 'NOT met'}")
    figures["target_met"] = met
    return figures


def make_copies(root: Path, images: int, copies: int, seed: int = 1) -> list[int]:
    """Re-encode ``copies`` of the photos (JPEG quality 70, 90% of the width and height) beside them."""
    from PIL import Image

    picks = np.sort(np.random.default_rng(seed).choice(images, copies, replace=False))
    for i in picks:
        source = root / f"class{i % 4}" / f"{i:05d}.jpg"
        with Image.open(source) as image:
            image = image.convert("RGB")
            image = image.resize((round(image.width * 0.9), round(image.height * 0.9)), Image.Resampling.BILINEAR)
        image.save(source.with_name(f"{i:05d}-copy.jpg"), quality=70)
    return [int(i) for i in picks]


def pair_scores(image_ids: np.ndarray, groups: np.ndarray) -> dict:
    """Of the true pairs (two rows with one image id), how many share a duplicate group; of the pairs the
    groups report (every two members of a group), how many are not a true pair."""
    rows_of: dict[str, list[int]] = {}
    for row, image in enumerate(image_ids):
        rows_of.setdefault(image, []).append(row)
    pairs = [rows for rows in rows_of.values() if len(rows) == 2]
    found = sum(1 for a, b in pairs if groups[a] is not None and groups[a] == groups[b])
    members: dict[str, list[str]] = {}
    for row, group in enumerate(groups):
        if group is not None:
            members.setdefault(group, []).append(image_ids[row])
    reported = sum(len(m) * (len(m) - 1) // 2 for m in members.values())
    right = sum(c * (c - 1) // 2 for m in members.values() for c in np.unique(m, return_counts=True)[1])
    return {"true_pairs": len(pairs), "found": found, "found_share": found / max(len(pairs), 1),
            "reported_pairs": reported, "false_pairs": reported - right,
            "false_share": (reported - right) / reported if reported else 0.0, "groups": len(members)}


def duplicates_part(images: int, copies: int, tmp: Path, home: str) -> dict:
    import pandas as pd

    from benchmarks.extract import make_jpegs
    from embedviz.data.precomputed import load_feature_set
    from embedviz.explore.audit import audit, content_hashes

    photos = tmp / "photos"
    start = time.perf_counter()
    make_jpegs(photos, images)
    make_copies(photos, images, copies)
    made_s = time.perf_counter() - start
    print(f"\n## Near duplicates: {images:,} photos 400x300 + {copies} re-encoded copies (quality 70, 90% size), "
          f"made in {made_s:.1f} s\n")
    print("| features | extract s | audit s | pairs found | groups | pairs reported | false pairs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    figures: dict = {"images": images, "copies": copies}
    hashes = None
    for model in ("pixels", "demo"):
        start = time.perf_counter()
        extract(photos, model, tmp / f"photos-{model}", home)
        features = load_feature_set(tmp / f"photos-{model}")
        extract_s = time.perf_counter() - start
        samples = features.samples
        names = samples["path"].astype(str).str.rsplit("/", n=1).str[-1]
        image_ids = names.str.replace("-copy", "", regex=False).to_numpy(dtype=object)
        if hashes is None:
            hashes = content_hashes(photos, samples["path"].tolist())
            by_hash = np.asarray(hashes, dtype=object)
            baseline = pair_scores(image_ids, [h if (by_hash == h).sum() > 1 else None for h in by_hash])
            figures["baseline_hashes"] = baseline
        result = audit(np.asarray(features.features), samples, features_key=features.key or None, hashes=hashes)
        column = result.table["duplicate_group"]
        groups = [None if pd.isna(g) else str(g) for g in column.to_numpy(dtype=object)]
        row = pair_scores(image_ids, groups) | {"dim": features.features.shape[1], "extract_s": extract_s,
                                                "audit_s": result.seconds}
        figures[model] = row
        print(f"| {'raw pixels' if model == 'pixels' else 'demo CNN'} ({row['dim']}-dim) | {extract_s:.1f} "
              f"| {row['audit_s']:.2f} | **{row['found']} / {row['true_pairs']} ({row['found_share']:.1%})** "
              f"| {row['groups']} | {row['reported_pairs']} | {row['false_pairs']} ({row['false_share']:.1%}) |")
    b = figures["baseline_hashes"]
    print(f"| baseline: content hashes alone | | | {b['found']} / {b['true_pairs']} ({b['found_share']:.1%}) "
          f"| {b['groups']} | {b['reported_pairs']} | {b['false_pairs']} |")
    met = all(figures[m]["found_share"] >= 0.95 and figures[m]["false_share"] <= 0.05 for m in ("pixels", "demo"))
    print(f"\nTarget (>= 95% of pairs found, <= 5% of reported pairs false, both features): "
          f"{'met' if met else 'NOT met'}")
    figures["target_met"] = met
    return figures


def scale_child(n: int, dim: int) -> None:
    """One size, in this (fresh) process: print its figures as one JSON line."""
    import pandas as pd

    from benchmarks.reduce import mixture
    from embedviz.explore.audit import audit
    from embedviz.maps.reducers import neighbours

    x, classes = mixture(n, dim)
    labels = np.array([f"c{c:02d}" for c in classes], dtype=object)
    noisy, rows = flip(labels, 0.05, seed=0)
    truth = np.zeros(n, dtype=bool)
    truth[rows] = True
    samples = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "label": noisy})
    key = f"benchmark-audit-{n}-{dim}"
    cold = audit(x, samples, features_key=key)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    neighbours.forget()  # as a new process after a map: the graph is read from the store
    warm = audit(x, samples, features_key=key)
    table = cold.table
    labels_found = scored(table["label_issue_score"].to_numpy(), table["is_label_issue"].to_numpy(), truth)
    print(json.dumps({"points": n, "dim": dim, "cold_s": cold.seconds, "warm_s": warm.seconds,
                      "peak_mib": peak_mib, "exact_graph": not any("approximate" in s for s in cold.notes),
                      "counts": cold.counts(), "labels": labels_found}))


def scale_part(sizes: list[int], dim: int) -> dict:
    print(f"\n## Scale: {dim}-dim float32 features, a fresh process and store per size (cold neighbour graph)\n")
    print("| points | audit s (cold) | target | again, graph from the store s | peak RSS of the process MiB "
          "| flagged: label / outlier | flipped in the top N |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="embedviz-bench-") as home:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "benchmarks", "audit", "--child", str(n), "--dim", str(dim)],
                                  cwd=ROOT, env={**os.environ, "EMBEDVIZ_HOME": home}, capture_output=True, text=True)
            process_s = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"the audit of {n:,} points failed:\n{done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1]) | {"process_s": process_s}
        target = TIME_TARGETS.get(n)
        row["target_s"] = target
        row["met"] = (target is None or row["cold_s"] <= target) and row["peak_mib"] <= MEMORY_TARGET_MIB
        rows.append(row)
        print(f"| {n:,} | **{row['cold_s']:.1f}** | {f'≤ {target:.0f}' if target else '-'} | {row['warm_s']:.1f} "
              f"| **{row['peak_mib']:,.0f}** | {row['counts']['label']:,} / {row['counts']['outlier']:,} "
              f"| {row['labels']['top_n_recall']:.1%} |", flush=True)
    met = all(row["met"] for row in rows)
    walls = ", ".join(f"{row['process_s']:.0f} s" for row in rows)
    print(f"\nTarget (seconds as above, peak RSS <= {MEMORY_TARGET_MIB:,} MiB): {'met' if met else 'NOT met'} "
          f"(each process's wall time, making the features and both audits: {walls})")
    return {"rows": rows, "target_met": met}


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("audit", __doc__)
    parser.add_argument("--noise", type=float, default=0.05, help="share of the demo's labels flipped")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated sizes for the scale part")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--only", choices=("labels", "duplicates", "scale"))
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        scale_child(args.child, args.dim)
        return {}
    print(f"# The audit on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    figures: dict = {}
    before = os.environ.get("EMBEDVIZ_HOME")
    with tempfile.TemporaryDirectory(prefix="embedviz-bench-") as tmp:
        tmp = Path(tmp)
        home = str(tmp / "home")
        os.environ["EMBEDVIZ_HOME"] = home  # this process's audits too: never the user's store
        if args.only in (None, "labels"):
            figures["labels"] = labels_part(args.noise, tmp, home)
        if args.only in (None, "duplicates"):
            figures["duplicates"] = duplicates_part(args.images, args.copies, tmp, home)
        if args.only in (None, "scale"):
            figures["scale"] = scale_part([int(s) for s in args.sizes.split(",")], args.dim)
    if before is None:
        os.environ.pop("EMBEDVIZ_HOME", None)
    else:
        os.environ["EMBEDVIZ_HOME"] = before
    return save("audit", args, figures)


if __name__ == "__main__":
    main()
