"""The data side of the command line: ``--data FILE`` and friends, ``datasets info``, loading
(and so validating) the data before a run folder is made, and one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["FolderGuard", "data_fields", "dataset_info", "one_line_warnings", "preload",
           "report_error", "resolve_data", "run_label"]


def resolve_data(args: argparse.Namespace) -> None:
    """Put ``--data`` into ``args.dataset`` (as a path, never mistaken for a dataset name)."""
    data = getattr(args, "data", None)
    if data is None:
        if getattr(args, "labels", None) is not None:
            raise ValueError("--labels goes with --data FILE (an edge list, SNAP or GraphML "
                             "graph).")
        return
    if not os.path.exists(data):
        raise FileNotFoundError(f"--data {data}: no such file or folder")
    args.dataset = data if (os.sep in data or "/" in data) else os.path.join(".", data)


def data_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields of the data options (their defaults where ``args`` lacks one)."""
    from graphtag.config import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    return {k: getattr(args, k, defaults[k])
            for k in ("labels", "labels_format", "unknown_nodes", "constant_tasks")}


def run_label(dataset: str) -> str:
    """A short name for default run folders: the dataset name, or the file's stem."""
    from graphtag.datasets.files import is_data_path

    if not is_data_path(dataset):
        return dataset
    name = Path(dataset).name
    for suffix in (".gz", ".mat", ".pt", ".pth", ".graphml", ".gml", ".csv", ".tsv", ".txt",
                   ".edges", ".edgelist", ".el", ".ungraph"):
        name = name.removesuffix(suffix)
    return name or "data"


def preload(config: Any, progress: bool) -> Any:
    """Load the config's dataset (validating it, and building its cache) before any run
    folder exists, so bad input leaves nothing behind."""
    from graphtag.datasets import load_dataset
    from graphtag.distributed import is_main, main_first

    with main_first():
        return load_dataset(config.dataset, config.root, config.num_tasks,
                            log=progress and is_main(), **config.data_kwargs())


class FolderGuard:
    """Removes a run folder this command created if it fails before writing any result."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.existed = self.out.exists()

    def discard_if_empty(self) -> None:
        if self.existed or not self.out.is_dir():
            return
        files = [p for p in self.out.rglob("*") if p.is_file()]
        if all(p.name == "config.json" for p in files):
            shutil.rmtree(self.out, ignore_errors=True)


def report_error(command: str, err: BaseException, debug: bool) -> int:
    """One line on stderr (the traceback too with ``--debug``); returns exit code 2."""
    if debug:
        traceback.print_exception(err)
    msg = " ".join(str(err).split()) or type(err).__name__
    known = isinstance(err, (ValueError, OSError, KeyError))
    if isinstance(err, FileNotFoundError) and err.filename and str(err.filename) not in msg:
        msg = f"{err.filename}: {err.strerror or msg}"
    hint = "" if known or debug else f" ({type(err).__name__}; --debug shows the traceback)"
    print(f"graphtag {command}: error: {msg}{hint}", file=sys.stderr)
    return 2


def one_line_warnings() -> None:
    """Print warnings as ``graphtag: warning: ...`` (no source location: it names graphtag's
    code, not the user's input, which the message itself names)."""
    import warnings

    def fmt(message: Warning | str, category: type[Warning], filename: str, lineno: int,
            line: str | None = None) -> str:
        return f"graphtag: warning: {' '.join(str(message).split())}\n"

    warnings.formatwarning = fmt


def _fmt_int(v: int) -> str:
    return f"{v:,}"


def dataset_info(args: argparse.Namespace) -> int:
    """``graphtag datasets info``: sizes, positives per task, label density."""
    import time

    t0 = time.perf_counter()
    if getattr(args, "data", None) is not None or getattr(args, "dataset", "") in _benchmarks():
        s = _file_summary(args)
    else:
        s = _named_summary(args)
    rows = [
        ("dataset", s["source"]),
        ("nodes", _fmt_int(s["nodes"])),
        ("edges", f"{_fmt_int(s['edges'])} (undirected)"),
        ("tasks", str(s["tasks"])),
        ("positives/task", f"min {s['positives_min']:,}, median {s['positives_median']:,.0f}, "
                           f"max {s['positives_max']:,}"),
        ("label density", f"{s['label_density']:.4f} (positives / known labels)"),
    ]
    if s.get("unknown_labels"):
        rows.append(("unknown labels", f"{s['unknown_labels']:.2%}"))
    rows.append(("isolated nodes", _fmt_int(s["isolated_nodes"])))
    rows.append(("components", _fmt_int(s["components"])))
    rows.append(("features", s["features_text"]))
    rows.append(("split", s["split_text"]))
    for k, v in rows:
        print(f"{k:<15}{v}")
    print(f"{'took':<15}{time.perf_counter() - t0:.2f} s")
    return 0


def _benchmarks() -> tuple[str, ...]:
    from graphtag.datasets.benchmarks import BENCHMARKS

    return tuple(BENCHMARKS)


def _file_summary(args: argparse.Namespace) -> dict[str, Any]:
    """Statistics straight from the parsed file: no features, no torch_geometric."""
    from graphtag.datasets.files import detect_kind, read_graph, select_tasks, summarize

    fields = data_fields(args)
    g = read_graph(args.dataset, fields["labels"], labels_format=fields["labels_format"],
                   unknown_nodes=fields["unknown_nodes"], num_tasks=args.num_tasks,
                   root=args.root)
    snap = os.path.exists(args.dataset) and detect_kind(Path(args.dataset)) == "snap"
    g = select_tasks(g, None if snap else args.num_tasks, fields["constant_tasks"])
    s = summarize(g)
    s["source"] = args.dataset
    s["features_text"] = (f"{s['features']} (from the file)" if s["features"] else
                          f"none in the file: --features {args.features} "
                          f"({args.num_features}) will be computed")
    s["split_text"] = ("from the file: " + ", ".join(
        f"{n} {int(m.sum()):,}" for n, m in zip(("train", "val", "test"), g.masks, strict=True))
        if g.masks is not None else "random (--seed), fractions 0.6/0.2/0.2")
    return s


def _named_summary(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from graphtag.datasets import load_dataset
    from graphtag.datasets.files import GraphArrays, summarize

    data = load_dataset(args.dataset, args.root, args.num_tasks, features=args.features,
                        num_features=args.num_features, seed=args.seed)
    ei = data.edge_index.numpy()
    lm = data.get("label_mask")
    g = GraphArrays(ei[:, ei[0] < ei[1]], data.y.numpy().astype(np.uint8),
                    np.arange(data.num_nodes), [], label_mask=None if lm is None
                    else lm.numpy())
    s = summarize(g)
    s["source"] = args.dataset
    s["features_text"] = f"{data.num_features} ({args.features})"
    s["split_text"] = (f"train {int(data.train_mask.sum()):,}, val {int(data.val_mask.sum()):,}"
                       f", test {int(data.test_mask.sum()):,}")
    return s
