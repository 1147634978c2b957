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
    LazyChoices,
    add_file_args,
    data_fields,
    dataset_info,
    one_line_warnings,
    preload,
    report_error,
    resolve_data,
    run_label,
)

__all__ = ["build_parser", "main"]


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="amazon-top100",
                   help="dataset name (see 'graphtag datasets list'); default: the shipped "
                        "amazon-top100")
    p.add_argument("--root", default="data", help="folder for raw and processed data")
    p.add_argument("--tasks", dest="num_tasks", type=int, default=None,
                   help="number of tasks (communities/labels); default 100 for SNAP, all for .mat")
    p.add_argument("--features", default="spectral",
                   choices=("spectral", "degree", "random", "spectral+degree"))
    p.add_argument("--num-features", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    add_file_args(p)


def build_parser() -> argparse.ArgumentParser:
    from graphtag import __version__

    MODELS = LazyChoices("graphtag.models", "MODELS")  # importing models means torch + PyG

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
        "--root", default="data")
    dl = ds_sub.add_parser("download", help="fetch a dataset's raw files (checked)")
    dl.add_argument("name")
    dl.add_argument("--root", default="data")
    info = ds_sub.add_parser("info", help="load a dataset and print its statistics")
    _add_data_args(info)

    tr = sub.add_parser("train", help="train a multitask GNN on all tasks; writes a run folder")
    _add_data_args(tr)
    _add_train_args(tr, MODELS)
    tr.add_argument("--out", default=None,
                    help="run folder (default runs/<dataset>-<model>-seed<seed>)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a run folder made with a different config")

    rn = sub.add_parser(
        "run", help="the whole Grad-TAG job: base model, gradients, task affinity, groups, "
                    "grouped training and a report, in a resumable run folder")
    _add_data_args(rn)
    _add_train_args(rn, ("sage", "sign"))
    g = rn.add_argument_group("Grad-TAG")
    g.add_argument("--groups", dest="num_groups", type=int, default=10,
                   help="number of task groups k (default 10)")
    g.add_argument("--subsets", dest="num_subsets", type=int, default=None,
                   help="random task subsets fitted (default: enough for about 6 draws of "
                        "each task pair, at least 1000)")
    g.add_argument("--subset-size", type=int, default=None,
                   help="tasks per subset (default: T/20 within 5..25)")
    g.add_argument("--proj-dim", type=int, default=64, help="gradient projection dimension")
    g.add_argument("--lam", type=float, default=0.1,
                   help="ridge weight of the subset fits (per labelled pair)")
    g.add_argument("--fit-method", default="stats", choices=("stats", "exact"),
                   help="subset fits from per-task sufficient statistics (default, fast) or "
                        "by exact batched Newton (the reference)")
    g.add_argument("--fit-refine", type=int, default=2,
                   help="refinement steps after the statistics fit's Newton step (default 2)")
    g.add_argument("--offset", action=argparse.BooleanOptionalAction, default=False,
                   help="use the base model's logits as offsets in the subset fits")
    g.add_argument("--metric", default="neg_logloss", choices=("neg_logloss", "f1"))
    g.add_argument("--scoring", default="linearized", choices=("linearized", "mapback"))
    g.add_argument("--max-fit-nodes", type=int, default=2000,
                   help="training nodes sampled for the fits (0: all)")
    g.add_argument("--max-score-nodes", type=int, default=2000,
                   help="validation nodes sampled for scoring (0: all)")
    g.add_argument("--solver", default="auto", choices=("auto", "cvxpy", "bm"))
    g.add_argument("--methods", default="gradtag,spectral,random",
                   help="groupings and peers to train and compare, comma-separated from "
                        "gradtag,spectral,random,stl,dmtg,tag,oracle,pcgrad,fairgrad,mtgd,"
                        "gradproj "
                        "(MTL is always reported)")
    g.add_argument("--group-mode", default="models", choices=("models", "heads"),
                   help="one model per group, or a shared encoder with one head per group")
    o = rn.add_argument_group("oracle (--methods ...,oracle: a model trained per task subset)")
    o.add_argument("--oracle-mode", default="finetune", choices=("finetune", "scratch"),
                   help="fine-tune the base model on each subset, or train from scratch")
    o.add_argument("--oracle-subsets", type=int, default=100,
                   help="task subsets trained (default 100)")
    o.add_argument("--oracle-subset-size", type=int, default=None,
                   help="tasks per subset (default: T/20 within 5..25)")
    o.add_argument("--oracle-epochs", type=int, default=None,
                   help="epochs per subset (default: 5 fine-tuning, 20 from scratch)")
    p = rn.add_argument_group("peers")
    p.add_argument("--peer-epochs", type=int, default=None,
                   help="epochs of DMTG's and TAG's own training (default: 100 and 20)")
    p.add_argument("--tag-lookaheads", type=int, default=100,
                   help="TAG lookaheads, evenly spaced over its steps (0: every step)")
    p.add_argument("--rep-grad", action="store_true",
                   help="combiners (pcgrad, ...) use gradients of the shared representation")
    rn.add_argument("--out", default=None, help="run folder (default runs/<dataset>-gradtag)")
    return ap


def _add_train_args(tr: argparse.ArgumentParser, models: Sequence[str]) -> None:
    tr.add_argument("--model", default="sage", choices=models, metavar="MODEL",
                    help="one of %(choices)s (default sage)")  # metavar: choices stay lazy
    tr.add_argument("--hidden", dest="hidden_channels", type=int, default=128)
    tr.add_argument("--layers", dest="num_layers", type=int, default=2,
                    help="GNN layers (hops for sign)")
    tr.add_argument("--dropout", type=float, default=0.5)
    tr.add_argument("--epochs", type=int, default=50)
    tr.add_argument("--batch-size", type=int, default=512)
    tr.add_argument("--fanout", dest="num_neighbors", type=int, nargs="+", default=None,
                    help="neighbours sampled per layer, e.g. --fanout 15 10 (default 15 10 ...)")
    tr.add_argument("--lr", type=float, default=0.01)
    tr.add_argument("--weight-decay", type=float, default=0.0)
    tr.add_argument("--patience", type=int, default=10)
    tr.add_argument("--pos-weight", default="auto",
                    help="'auto' (#neg/#pos per task), 'none', or a number")
    tr.add_argument("--full-batch", action="store_true", help="no neighbour sampling")
    tr.add_argument("--combiner", default="equal",
                    choices=("equal", "pcgrad", "fairgrad", "mtgd", "gradproj"),
                    help="how per-task gradients combine (graphtag.optim); default the plain sum")
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--no-progress", action="store_true")


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


def _train_fields(args: argparse.Namespace, cmd: str) -> dict[str, object]:
    pos_weight: float | str | None = args.pos_weight
    if isinstance(pos_weight, str) and pos_weight.lower() == "none":
        pos_weight = None
    elif pos_weight != "auto":
        try:
            pos_weight = float(pos_weight)
        except ValueError:
            raise ValueError(f"--pos-weight {pos_weight!r} is not 'auto', 'none' or a "
                             "number.") from None
    fanout = tuple(args.num_neighbors or [15, 10] + [5] * max(args.num_layers - 2, 0))
    return dict(
        dataset=args.dataset, root=args.root, num_tasks=args.num_tasks, features=args.features,
        num_features=args.num_features, model=args.model, hidden_channels=args.hidden_channels,
        num_layers=args.num_layers, dropout=args.dropout, epochs=args.epochs,
        batch_size=args.batch_size, num_neighbors=fanout[: args.num_layers], lr=args.lr,
        weight_decay=args.weight_decay, patience=args.patience, pos_weight=pos_weight,
        full_batch=args.full_batch, combiner=args.combiner, seed=args.seed,
        device=args.device, **data_fields(args),
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from graphtag.distributed import get_world_size, is_main
    from graphtag.training.run import TrainConfig, train_run

    cfg = TrainConfig(**_train_fields(args, "train"))
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
    from graphtag.pipeline import RunConfig, run_pipeline
    from graphtag.pipeline.report import markdown_table

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    cfg = RunConfig(
        **_train_fields(args, "run"), num_groups=args.num_groups, num_subsets=args.num_subsets,
        subset_size=args.subset_size, proj_dim=args.proj_dim, lam=args.lam,
        fit_method=args.fit_method, fit_refine=args.fit_refine, offset=args.offset,
        metric=args.metric, scoring=args.scoring, max_fit_nodes=args.max_fit_nodes or None,
        max_score_nodes=args.max_score_nodes or None, solver=args.solver, methods=methods,
        group_mode=args.group_mode, peer_epochs=args.peer_epochs,
        tag_lookaheads=args.tag_lookaheads or None, rep_grad=args.rep_grad,
        oracle_mode=args.oracle_mode, oracle_subsets=args.oracle_subsets,
        oracle_subset_size=args.oracle_subset_size, oracle_epochs=args.oracle_epochs,
    )
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
