"""``python -m embedviz``: extract, reduce and list layers without the dashboard.

Exit status 0 on success, 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from embedviz import settings
from embedviz.errors import EmbedVizError
from embedviz.extract.devices import DEVICES
from embedviz.extract.pooling import POOLINGS
from embedviz.maps.reducers.methods import COMPARE_METHODS, REDUCERS

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, as every other bad input gets."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _progress_printer(label: str, unit: str):
    from embedviz.progress import Rate

    last, rate = {"t": 0.0}, Rate()

    def progress(done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done == total or now - last["t"] > 1.0:
            last["t"] = now
            end = "\n" if done == total or not sys.stderr.isatty() else "\r"
            sys.stderr.write(f"{label}: {rate.describe(done, total, unit)}{end}")
            sys.stderr.flush()

    return progress


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise EmbedVizError(f"--param takes NAME=VALUE, not {pair!r} (for example --param perplexity=30).")
        params[name.strip()] = value.strip()
    return params


def _extract(args: argparse.Namespace) -> None:
    from embedviz.data.demo import demo_collection
    from embedviz.data.featureset import save_feature_set
    from embedviz.data.images import file_hashes, load_collection
    from embedviz.extract.model_index import remember_model, stored_layers
    from embedviz.extract.store import FeatureStore

    collection = demo_collection() if args.data == "demo" else load_collection(args.data, args.path_prefix)
    names = None
    if args.classes:
        from embedviz.data.classes import load_class_index, name_labels

        names = load_class_index(args.classes)
        collection = name_labels(collection, names)
    layers = [part.strip() for part in args.layer.split(",") if part.strip()] if args.layer else [None]
    ray = None
    if args.engine == "ray":
        from embedviz.extract.ray_engine import RAY_MISSING, RayOptions, ray_available

        if not ray_available():  # said before any work; the cluster is joined when there is work for it
            raise EmbedVizError(RAY_MISSING)
        ray = RayOptions(args.address, args.ray_workers, args.num_gpus_per_worker, args.threads_per_worker)
    elif any(v is not None
             for v in (args.address, args.ray_workers, args.num_gpus_per_worker, args.threads_per_worker)):
        raise EmbedVizError("--address, --ray-workers, --num-gpus-per-worker and --threads-per-worker go with "
                            "--engine ray.")
    store, hashes = FeatureStore(), file_hashes(collection)
    # Stored already: read without loading the model (no torch), as a model loaded before remembered it.
    results = stored_layers(collection, args.model, args.weights, layers, store=store, pooling=args.pooling,
                            class_names=names, hashes=hashes)
    if results is None:
        from embedviz.extract.features import compute_layers
        from embedviz.extract.models import fit_to_images, load_model

        loaded = load_model(args.model, args.weights)
        model = fit_to_images(loaded, collection)  # raw pixels: the images' own size
        if names is not None:
            model = model.with_class_names(names)
        results = compute_layers(collection, model, layers, store=store, device=args.device,
                                 batch_size=args.batch_size, num_workers=args.workers, pooling=args.pooling,
                                 progress=_progress_printer("extract", "images"), ray=ray, shards=args.shards,
                                 hashes=hashes)
        remember_model(store, args.model, args.weights, loaded)
    for layer, result in results.items():
        out = Path(args.out) / _safe_name(layer) if len(results) > 1 else Path(args.out)
        save_feature_set(result, out)
        how = "cache hit, nothing recomputed" if result.from_cache else f"{result.manifest['seconds']:.1f} s"
        copies = result.manifest.get("num_duplicates", 0)
        print(f"{len(result):,} images -> {result.features.shape[1]}-dim features from {result.manifest['layer']} "
              f"({how}); {len(result.skipped)} skipped (see skipped.csv)"
              + (f"; {copies} exact duplicates (column duplicate_of)" if copies else "") + f"; wrote {out}")


def _safe_name(layer: str) -> str:
    """A layer name as a folder name (``layer4.1.relu`` stays; other characters become ``_``)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in layer)


def _features(args: argparse.Namespace):
    """``--features``, with ``--metadata``/``--id-column`` when given (reduce, projector, audit)."""
    from embedviz.data.precomputed import load_feature_set, load_precomputed

    if args.metadata or args.id_column:
        return load_precomputed(args.features, args.metadata, args.id_column)
    return load_feature_set(args.features)


def _reduce(args: argparse.Namespace) -> None:
    from embedviz.explore.export import write_map
    from embedviz.maps.reducers import compute_embedding

    params = _parse_params(args.param)
    suffix = Path(args.out).suffix.lower()
    if suffix not in (".csv", ".parquet", ".html"):
        raise EmbedVizError(f"Cannot write {Path(args.out).name}: --out must end in .csv, .parquet or .html.")
    if args.format and suffix == ".html":
        raise EmbedVizError("--format metascatter writes a table; give an --out ending in .csv or .parquet.")
    features = _features(args)
    sample, strata = None, None
    if args.sample:
        from embedviz.maps.reducers import Sample

        if args.stratify_by and args.stratify_by not in features.samples.columns:
            raise EmbedVizError(f"--stratify-by {args.stratify_by}: no such column; the columns are "
                                f"{', '.join(map(str, features.samples.columns))}.")
        sample = Sample(args.sample, args.stratify_by)
        strata = features.samples[args.stratify_by].to_numpy() if args.stratify_by else None
    elif args.stratify_by:
        raise EmbedVizError("--stratify-by needs --sample N (the number of points to fit on).")
    placer = None
    if args.engine == "ray":
        from embedviz.extract.ray_engine import RAY_MISSING, ray_available
        from embedviz.maps.ray_placer import place_on_cluster

        if not sample:
            raise EmbedVizError("--engine ray places the points left out of a --sample fit on the cluster; give "
                                "--sample N (the fit itself runs here).")
        if not ray_available():
            raise EmbedVizError(RAY_MISSING)
        placer = place_on_cluster(args.address)
    elif args.address:
        raise EmbedVizError("--address goes with --engine ray.")
    embedding = compute_embedding(features.features, args.method, params, n_components=args.dims,
                                  random_state=args.seed, features_key=features.key or None,
                                  progress=_progress_printer(args.method, "steps"), sample=sample, strata=strata,
                                  placer=placer)
    write_map(embedding, features.samples, args.out, fmt=args.format)
    for note in embedding.notes:
        print(f"note: {note}", file=sys.stderr)
    how = "cache hit" if embedding.from_cache else f"{embedding.seconds:.1f} s"
    print(f"{len(features):,} points -> {args.dims}-D {args.method} map ({how}); wrote {args.out}")


def _projector(args: argparse.Namespace) -> None:
    from embedviz.explore.export import write_projector

    features = _features(args)
    images = Path(args.images).expanduser() if args.images else None
    if images is not None and not images.is_dir():
        raise EmbedVizError(f"--images {args.images}: no such folder; give the folder the samples' paths start from.")
    folder = write_projector(features.features, features.samples, args.out, images_root=images)
    sprite = " with a sprite" if (folder / "sprite.png").exists() else ""
    print(f"{len(features):,} points -> TensorBoard projector files{sprite} in {folder}")


def _audit(args: argparse.Namespace) -> None:
    from embedviz.explore.audit import audit, content_hashes, write_report

    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".csv", ".parquet", ".html"):
        raise EmbedVizError(f"Cannot write {out.name}: --out must end in .csv, .parquet or .html.")
    if out.is_dir() or (out.parent.exists() and not out.parent.is_dir()):
        raise EmbedVizError(f"Cannot write {args.out}: it is a folder, or its parent is a file; give a file name.")
    features = _features(args)
    hashes = None
    if args.images:
        images = Path(args.images).expanduser()
        if not images.is_dir():
            raise EmbedVizError(f"--images {args.images}: no such folder; give the folder the samples' paths start "
                                "from.")
        if "path" not in features.samples.columns:
            raise EmbedVizError("--images needs a path column in the samples' table to find each image.")
        hashes = content_hashes(images, features.samples["path"].tolist())
    result = audit(features.features, features.samples, features_key=features.key or None,
                   source=args.probabilities, hashes=hashes, progress=_progress_printer("audit", "steps"))
    clusters = features.samples["cluster"].astype("string").fillna("(none)").tolist() \
        if "cluster" in features.samples.columns else None
    try:
        write_report(result, out, clusters)
    except OSError as exc:
        raise EmbedVizError(f"Cannot write {args.out}: {exc.strerror or exc}.") from None
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    counts = result.counts()
    groups = result.table["duplicate_group"].nunique()
    print(f"{len(result):,} samples audited in {result.seconds:.1f} s: {counts['label']:,} suspected label errors, "
          f"{counts['duplicate']:,} in {groups:,} duplicate groups ({counts['leak']:,} across splits), "
          f"{counts['outlier']:,} outliers; wrote {args.out}")


def _search(args: argparse.Namespace) -> None:
    from embedviz.data.precomputed import load_feature_set
    from embedviz.explore.export import to_csv
    from embedviz.explore.search import search_model, similarity, top, unit_features

    if bool(args.text) == bool(args.image):
        raise EmbedVizError("Give --text \"...\" or --image FILE (one of them).")
    if args.top < 1:
        raise EmbedVizError("--top must be at least 1.")
    if args.out and (Path(args.out).expanduser().is_dir() or not Path(args.out).expanduser().parent.is_dir()):
        raise EmbedVizError(f"Cannot write {args.out}: it is a folder, or its folder does not exist.")
    features = load_feature_set(args.features)
    model = search_model(features.manifest, args.weights)
    if args.text:
        query = model.encode_text([args.text])[0]
    else:
        from embedviz.data.decode import open_image

        try:
            image = open_image(Path(args.image).expanduser())
        except (OSError, ValueError) as exc:
            raise EmbedVizError(f"--image {args.image}: not an image this server reads ({exc}).") from None
        query = model.encode_image(image)
    scores = similarity(unit_features(features.features), query)
    rows = top(scores, args.top)
    columns = [c for c in ("sample_id", "path", "label") if c in features.samples.columns]
    table = features.samples.iloc[rows][columns].assign(similarity=scores[rows].round(4)).reset_index(drop=True)
    if args.out:
        Path(args.out).expanduser().write_text(to_csv(table), encoding="utf-8")
        print(f"{len(table):,} most similar of {len(features):,} written to {args.out}")
    else:
        sys.stdout.write(to_csv(table))


def _layers(args: argparse.Namespace) -> None:
    from embedviz.extract.layers import default_layer, list_layers
    from embedviz.extract.models import DEMO, PIXELS, RANDOM, load_model

    weights = args.weights or (None if args.model in (DEMO, PIXELS) else RANDOM)
    model = load_model(args.model, weights)
    default = default_layer(model)
    for name in list_layers(model):
        print(f"{name}  (default)" if name == default else name)


def _extract_for_compare(args: argparse.Namespace) -> tuple[list, list[str]]:
    """Every checkpoint (``--weights``, repeated) at every layer (``--layer A,B``), extracted into the
    store in one pass per checkpoint; named ``checkpoint:layer`` (or just one part when the other
    does not vary)."""
    from embedviz.data.demo import demo_collection
    from embedviz.data.images import file_hashes, load_collection
    from embedviz.extract.features import compute_layers
    from embedviz.extract.model_index import remember_model, stored_layers
    from embedviz.extract.models import load_model
    from embedviz.extract.store import FeatureStore

    if not args.model:
        raise EmbedVizError("--data needs --model (a torchvision architecture, or 'demo').")
    collection = demo_collection() if args.data == "demo" else load_collection(args.data, args.path_prefix)
    checkpoints = args.weights or [None]
    layers = [part.strip() for part in args.layer.split(",") if part.strip()] if args.layer else [None]
    sets, names = [], []
    store, hashes = FeatureStore(), file_hashes(collection)
    for weights in checkpoints:
        results = stored_layers(collection, args.model, weights, layers, store=store, hashes=hashes)
        if results is None:
            model = load_model(args.model, weights)
            results = compute_layers(collection, model, layers, store=store, device=args.device,
                                     num_workers=args.workers, progress=_progress_printer("extract", "images"),
                                     hashes=hashes)
            remember_model(store, args.model, weights, model)
        for layer, result in results.items():
            sets.append(result)
            parts = ([Path(weights).stem if weights else "default"] if len(checkpoints) > 1 else []) + \
                ([layer] if len(layers) > 1 or len(checkpoints) == 1 else [])
            names.append(":".join(parts))
    return sets, names


def _compare(args: argparse.Namespace) -> None:
    from embedviz.data.precomputed import load_feature_set
    from embedviz.maps.compare import compare_feature_sets

    if args.data:
        sets, default_names = _extract_for_compare(args)
    elif args.features:
        sets, default_names = [load_feature_set(p) for p in args.features], [Path(p).name for p in args.features]
    else:
        raise EmbedVizError("Give --features twice or more, or --data and --model with several --weights or layers.")
    names = args.name or default_names
    if len(names) != len(sets) or len(set(names)) != len(names):
        raise EmbedVizError(f"Give one distinct --name per feature set ({len(sets)}), or none.")
    if len(sets) < 2:
        raise EmbedVizError("Compare needs two or more feature sets: several --weights, or --layer A,B.")
    maps, separation = compare_feature_sets(sets, names, args.method, _parse_params(args.param), n_components=args.dims,
                                            random_state=args.seed, k=args.k,
                                            progress=_progress_printer(args.method, "steps"))
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    maps.to_parquet(out / "maps.parquet", index=False)
    maps.to_csv(out / "maps.csv", index=False)
    separation.to_csv(out / "separation.csv", index=False)
    print(f"{len(maps):,} points in {len(sets)} feature sets -> aligned {args.dims}-D {args.method} maps, "
          f"neighbourhood overlap (k={args.k}) and per-class separation in {out}")
    for name in names:
        part = separation[separation["set"] == name]
        if len(part):
            print(f"  {name}: mean silhouette {part['silhouette'].mean():.3f}, "
                  f"k-NN accuracy {part['knn_accuracy'].mean():.3f}")


def _housekeep(args: argparse.Namespace) -> None:
    from embedviz.serve.housekeeping import IDLE_VAR, LIMIT_VAR, housekeep_store, limits

    idle, cap = limits()
    report = housekeep_store()
    print(report.describe())
    print(f"(uploads idle over {idle / 3600:g} h go, {IDLE_VAR}; store cap: "
          + (f"{cap / 2**30:g} GiB" if cap else "none") + f", {LIMIT_VAR})")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m embedviz", description="Embedding maps of image models, headless.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("extract", help="run images through a model and store features")
    p.add_argument("--data", required=True,
                   help="folder (class sub-folders become label), .zip/.tar, CSV/Parquet manifest, or 'demo'")
    p.add_argument("--model", required=True,
                   help="torchvision architecture name, timm:NAME (timm:convnext_tiny), clip:NAME (clip:ViT-B-32: "
                        "the image tower), 'pixels' or 'demo'")
    p.add_argument("--weights", help=".safetensors or .pt/.pth state_dict; 'pretrained' downloads torchvision's "
                                     "(or timm's), 'random' is untrained")
    p.add_argument("--layer", help="graph node to take features from (default: the final classifier's input, or "
                                   "an embedding model's output); "
                                   "several, comma-separated, are taken in one pass, each into --out/<layer>")
    p.add_argument("--pooling", default="avg", choices=POOLINGS,
                   help="how a spatial or token map becomes a vector (flatten: at most 8,192 values)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: cores - 1)")
    p.add_argument("--out", required=True, help="folder for features.npy, samples.parquet, skipped.csv, manifest.json")
    p.add_argument("--path-prefix", help="folder that a manifest's relative paths start from")
    p.add_argument("--classes", help="class index (JSON {\"0\": \"cat\"} or text) naming label and prediction ids")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: 32 on the CPU, 256 on CUDA (halved on out-of-memory)")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local: this process (default); ray: a Ray Data pipeline on a Ray cluster (pip install -r "
                        "requirements-ray.txt), the model held by an actor per GPU")
    p.add_argument("--address", help="with --engine ray: the cluster (auto, HOST:PORT or ray://HOST:PORT; default: "
                                     "$EMBEDVIZ_RAY_ADDRESS, else $RAY_ADDRESS, else a local cluster on this "
                                     "machine)")
    p.add_argument("--num-gpus-per-worker", type=float, default=None,
                   help="with --engine ray: GPUs per model actor (default 1 when the cluster has GPUs, else 0)")
    p.add_argument("--ray-workers", type=int, default=None,
                   help="with --engine ray: model actors (default: the cluster's GPUs / --num-gpus-per-worker, or 1)")
    p.add_argument("--threads-per-worker", type=int, default=None,
                   help="with --engine ray: CPU threads per model actor (default: its node's cores)")
    p.add_argument("--shards", help="keep the Parquet shards here (a folder, or s3://, gs://, hdfs:// every node "
                                    "sees) instead of the store's work folder; a rerun resumes from them")
    p.set_defaults(run=_extract)

    p = sub.add_parser("reduce", help="reduce features to a 2-D or 3-D map")
    p.add_argument("--features", required=True,
                   help="a folder written by extract, or .npy/.npz, Parquet with a vector column, "
                        "TensorBoard tensors.tsv")
    p.add_argument("--metadata", help="CSV/Parquet joined to precomputed features on row order")
    p.add_argument("--id-column", help="the metadata column holding sample ids (default: sample_id, id or path)")
    p.add_argument("--method", required=True, choices=tuple(REDUCERS),
                   help="precomputed: show the 2-D/3-D coordinates given with the data (Metascatter X-/Y-Coord)")
    p.add_argument("--dims", type=int, default=2, choices=(2, 3))
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="e.g. perplexity=30, n_neighbors=15")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", type=int, default=0, metavar="N",
                   help="fit on N points and place the rest with the method's transform (default: fit on all)")
    p.add_argument("--stratify-by", metavar="COLUMN", help="draw the --sample from each value of COLUMN in proportion")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="ray: place the points left out of the --sample fit in parallel on a Ray cluster")
    p.add_argument("--address", help="with --engine ray: the cluster (default: $EMBEDVIZ_RAY_ADDRESS, else "
                                     "$RAY_ADDRESS, else a local one)")
    p.add_argument("--format", choices=("metascatter",), help="write Paths, X-Coord, Y-Coord and metadata")
    p.add_argument("--out", required=True, help="output .csv, .parquet or .html")
    p.set_defaults(run=_reduce)

    p = sub.add_parser("projector", help="write features and metadata as TensorBoard projector files")
    p.add_argument("--features", required=True, help="as for reduce")
    p.add_argument("--metadata", help="CSV/Parquet joined to precomputed features on row order")
    p.add_argument("--id-column", help="the metadata column holding sample ids")
    p.add_argument("--images", help="the folder the samples' paths start from, to draw a sprite of the images")
    p.add_argument("--out", required=True,
                   help="folder for tensors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt")
    p.set_defaults(run=_projector)

    p = sub.add_parser("audit", help="suspected label errors, duplicates, leaks and outliers, one row per sample")
    p.add_argument("--features", required=True, help="as for reduce")
    p.add_argument("--metadata", help="CSV/Parquet joined to precomputed features on row order")
    p.add_argument("--id-column", help="the metadata column holding sample ids")
    p.add_argument("--probabilities", default="auto", choices=("auto", "from-model", "knn"),
                   help="what predicts each label: the model's probabilities (p_<class> columns) or the k nearest "
                        "neighbours' labels on the features (auto: the model's when its classes are the labels)")
    p.add_argument("--images", help="the folder the samples' paths start from, to find exact duplicates by content")
    p.add_argument("--out", required=True, help="the report: .csv, .parquet or .html")
    p.set_defaults(run=_audit)

    p = sub.add_parser("search", help="rank the images of CLIP/SigLIP features by similarity to a text or an image")
    p.add_argument("--features", required=True, help="a folder written by extract with a clip:NAME model")
    p.add_argument("--text", help="what to look for, e.g. \"a dog on grass\"")
    p.add_argument("--image", help="or: an image to find the most similar to")
    p.add_argument("--weights", help="the weights file the features were extracted with (default: random, when they "
                                     "were)")
    p.add_argument("--top", type=int, default=50, help="how many to list (default 50)")
    p.add_argument("--out", help="write the list as CSV here instead of printing it")
    p.set_defaults(run=_search)

    p = sub.add_parser("compare", help="aligned maps of several feature sets of the same images (layers, checkpoints)")
    p.add_argument("--features", action="append", help="a folder written by extract; give it 2+ times")
    p.add_argument("--data", help="or: images to extract now (as for extract), with --model")
    p.add_argument("--model", help="with --data: the architecture ('demo' for the demo CNN)")
    p.add_argument("--weights", action="append",
                   help="with --data: a checkpoint; give it once per checkpoint, in order")
    p.add_argument("--layer",
                   help="with --data: layers to compare, comma-separated (default: the final classifier's input)")
    p.add_argument("--path-prefix", help="with --data: the folder a manifest's relative paths start from")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: cores - 1)")
    p.add_argument("--name", action="append", help="a short name per feature set, in order")
    p.add_argument("--method", default="tsne", choices=COMPARE_METHODS)
    p.add_argument("--dims", type=int, default=2, choices=(2, 3))
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10, help="neighbours for the overlap and separation scores")
    p.add_argument("--out", required=True, help="folder for maps.parquet/.csv and separation.csv")
    p.set_defaults(run=_compare)

    p = sub.add_parser("housekeep", help="delete idle uploads and keep the store under EMBEDVIZ_STORE_LIMIT_GB")
    p.set_defaults(run=_housekeep)

    p = sub.add_parser("layers", help="list the layers a model offers")
    p.add_argument("--model", required=True, help="as for extract: a torchvision name, timm:NAME, clip:NAME, 'demo'")
    p.add_argument("--weights", help="as for extract (default: random)")
    p.set_defaults(run=_layers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings.configure_logging(quiet=True)  # warnings; EMBEDVIZ_LOG_LEVEL=INFO for what jobs and engines do
    try:
        args.run(args)
    except EmbedVizError as exc:
        sys.stderr.write(f"embedviz {args.command}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"embedviz {args.command}: interrupted; finished work is kept in the store.\n")
        return 130
    return 0
