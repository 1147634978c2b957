"""``graphtag`` command line: ``graphtag datasets ...``, ``graphtag train ...`` and
``graphtag run ...`` (the whole Grad-TAG job)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from graphtag.cli.data import (
    FolderGuard,
    dataset_info,
    one_line_warnings,
    preload,
    report_error,
    resolve_data,
    run_label,
)
from graphtag.cli.options import GROUP_TITLES, add_config_options, config_from_args
from graphtag.config import RunConfig, TrainConfig

__all__ = ["build_parser", "main"]

#: The config fields ``datasets info`` reads (the data ones; it makes no split).
INFO_FIELDS = ("dataset", "root", "num_tasks", "features", "num_features", "seed", "labels",
               "labels_format", "unknown_nodes", "constant_tasks")


def _add_config_args(p: argparse.ArgumentParser, cls: type,
                     names: Sequence[str] | None = None) -> None:
    """The options of config ``cls`` (every field, or ``names``), generated from its fields
    (:mod:`graphtag.cli.options`), with ``--data`` first among the file options."""
    groups = {g: p.add_argument_group(GROUP_TITLES[g]) for g in ("data", "files")}
    groups["files"].add_argument(
        "--data", default=None, metavar="PATH",
        help="a data file or folder instead of --dataset: .mat (network + group), an edge "
             "list (.txt/.csv/.tsv[.gz]) with --labels, a SNAP *.ungraph.txt[.gz], a "
             "torch.save'd PyG Data (.pt), GraphML/GML, or an OGB dataset folder")
    add_config_options(p, cls, names, groups)
    # also accepted after the subcommand (SUPPRESS: an absent flag keeps the top level's)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    """The ``graphtag`` parser. The options of ``train`` and ``run`` (and the data options
    of ``datasets info``) are generated from :class:`~graphtag.config.TrainConfig` and
    :class:`~graphtag.config.RunConfig`: every config field is an option, with the
    config's default, choices and help."""
    from graphtag import __version__

    ap = argparse.ArgumentParser(
        prog="graphtag",
        description="Multitask learning on graphs with many node-labeling tasks.",
    )
    ap.add_argument("--version", action="version", version=f"graphtag {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = ap.add_subparsers(dest="command", required=True)

    ds = sub.add_parser("datasets", help="list, download or inspect datasets")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    ds_sub.add_parser("list", help="known datasets and whether they are on disk").add_argument(
        "--root", default=TrainConfig.root, help="folder for raw and processed data")
    dl = ds_sub.add_parser("download", help="fetch a dataset's raw files (checked)")
    dl.add_argument("name")
    dl.add_argument("--root", default=TrainConfig.root, help="folder for raw and processed data")
    info = ds_sub.add_parser("info", help="load a dataset and print its statistics")
    _add_config_args(info, TrainConfig, INFO_FIELDS)

    tr = sub.add_parser("train", help="train a multitask GNN on all tasks; writes a run folder")
    _add_config_args(tr, TrainConfig)
    tr.add_argument("--out", default=None,
                    help="run folder (default runs/<dataset>-<model>-seed<seed>)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a run folder made with a different config")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")

    rn = sub.add_parser(
        "run", help="the whole Grad-TAG job: base model, gradients, task affinity, groups, "
                    "grouped training and a report, in a resumable run folder")
    _add_config_args(rn, RunConfig)
    rn.add_argument("--out", default=None, help="run folder (default runs/<dataset>-gradtag)")
    rn.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def _cmd_datasets(args: argparse.Namespace) -> int:
    if args.action == "info":
        return dataset_info(args)
    from graphtag.datasets import MAT_GRAPHS, SNAP_GRAPHS

    if args.action == "list":
        print(f"{'name':<15} {'nodes':>10} {'edges':>12}  {'on disk':<8} description")
        for name, src in SNAP_GRAPHS.items():
            here = "yes" if src.bundled or (Path(args.root) / name / "raw").is_dir() else "no"
            print(f"{name:<15} {src.nodes:>10,} {src.edges:>12,}  {here:<8} {src.description}")
        for name, (fname, _, _) in MAT_GRAPHS.items():
            here = "yes" if (Path(args.root) / name / "raw" / fname).exists() else "no"
            print(f"{name:<15} {'':>10} {'':>12}  {here:<8} multi-label .mat benchmark ({fname})")
        from graphtag.datasets.families import FAMILY_DATASETS

        for name, (base, kw) in FAMILY_DATASETS.items():
            src = SNAP_GRAPHS[base]
            print(f"{name:<15} {src.nodes:>10,} {src.edges:>12,}  {'(made)':<8} "
                  f"{kw['num_families']} families x {kw['copies']} noisy copies of {base} "
                  "communities: known groups that matter")
        print(f"{'synthetic':<15} {'':>10} {'':>12}  {'(made)':<8} planted task groups")
        from graphtag.datasets.benchmarks import BENCHMARKS, benchmark_on_disk

        for name, (pkg, cls) in BENCHMARKS.items():
            here = "yes" if benchmark_on_disk(name, args.root) else "no"
            print(f"{name:<15} {'':>10} {'':>12}  {here:<8} {pkg.upper()} benchmark ({cls})")
        print("your own files: --data PATH (see README, 'Your own data')")
        return 0
    if args.action == "download":
        from graphtag.datasets import MultiLabelMat, SNAPCommunities
        from graphtag.datasets.benchmarks import BENCHMARKS, benchmark_folder

        if args.name in MAT_GRAPHS:
            ds = MultiLabelMat(args.root, args.name)
        elif args.name in SNAP_GRAPHS:
            ds = SNAPCommunities(args.root, args.name)
        elif args.name in BENCHMARKS:
            print(f"{args.name}: files in {benchmark_folder(args.name, args.root)}")
            return 0
        else:
            raise ValueError(f"unknown dataset {args.name!r}; see 'graphtag datasets list'.")
        print(f"{args.name}: raw files in {ds.raw_dir}")
        return 0
    return dataset_info(args)


def _cmd_train(args: argparse.Namespace) -> int:
    from graphtag.distributed import get_world_size, is_main
    from graphtag.training.run import train_run

    cfg = config_from_args(TrainConfig, args)  # validated before any work
    out = args.out or os.path.join("runs", f"{run_label(args.dataset)}-{args.model}-seed"
                                           f"{args.seed}")
    if is_main():
        print(f"graphtag train: {args.dataset}, model {args.model}, run folder {out}"
              + (f", {get_world_size()} processes" if get_world_size() > 1 else ""))
    data = preload(cfg, not args.no_progress)  # bad data fails before the folder exists
    guard = FolderGuard(out)
    try:
        m = train_run(cfg, out, progress=not args.no_progress, overwrite=args.overwrite,
                      data=data)
    except Exception:
        guard.discard_if_empty()
        raise
    if not is_main():
        return 0
    rows = [
        ("dataset", f"{m['dataset']} ({m['num_nodes']:,} nodes, {m['num_edges']:,} edges, "
                    f"{m['num_tasks']} tasks)"),
        ("model", f"{m['model']}, best epoch {m['best_epoch']} of {m['epochs_run']}"),
        ("val macro-F1", f"{m['val_macro_f1']:.4f}"),
        ("test macro-F1", f"{m['test_macro_f1']:.4f}"),
        ("test micro-F1", f"{m['test_micro_f1']:.4f}"),
        ("test ROC-AUC", f"{m['test_roc_auc']:.4f}"),
        ("constant predictor test macro-F1", f"{m['constant_test_macro_f1']:.4f}"),
        *([("test ROC-AUC (OGB Evaluator)", f"{m['test_ogb_rocauc']:.4f}")]
          if m.get("test_ogb_rocauc") is not None else []),
        ("train time", f"{m['seconds_train']:.1f} s"),
    ]
    w = max(len(k) for k, _ in rows)
    print()
    print(f"| {'metric':<{w}} | value |")
    print(f"|{'-' * (w + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{w}} | {v} |")
    print(f"\nwrote {out}/metrics.json")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from graphtag.distributed import get_world_size, is_main
    from graphtag.pipeline import run_pipeline
    from graphtag.pipeline.report import markdown_table

    cfg = config_from_args(RunConfig, args)  # validated before any work
    out = args.out or os.path.join("runs", f"{run_label(args.dataset)}-gradtag")
    if is_main():
        print(f"graphtag run: {args.dataset}, model {args.model}, {args.num_groups} groups, "
              f"run folder {out}"
              + (f", {get_world_size()} processes" if get_world_size() > 1 else ""))
    preload(cfg, not args.no_progress)  # validates (and caches) the data before any folder
    guard = FolderGuard(out)
    try:
        report = run_pipeline(cfg, out, progress=not args.no_progress)
    except Exception:
        guard.discard_if_empty()
        raise
    if not is_main():
        return 0
    print()
    print(markdown_table(report))
    print(f"\nwrote {out}/report.md, report.json, groups.csv, affinity.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphtag`` console script.

    ``graphtag train`` and ``graphtag run`` started by ``torchrun`` (``WORLD_SIZE`` > 1 in the
    environment) run distributed over its processes; see ``docs/distributed.md``.
    """
    args = build_parser().parse_args(argv)
    if not args.debug:
        one_line_warnings()
    training = args.command in ("train", "run")
    if training:  # torch.distributed; `datasets` commands stay free of torch
        from graphtag import distributed
    started = training and not distributed.is_distributed() and distributed.init_from_env()
    try:
        resolve_data(args)
        if args.command == "datasets":
            return _cmd_datasets(args)
        if args.command == "train":
            return _cmd_train(args)
        if args.command == "run":
            return _cmd_run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # every error: one line, exit 2 (--debug: the traceback too)
        main_rank = not training or distributed.is_main()
        return report_error(args.command, err, args.debug) if main_rank else 2
    finally:
        if started:
            distributed.destroy()
    return 1


if __name__ == "__main__":
    sys.exit(main())
