"""The configs are the interface: every field is a command-line option with the config's
default and choices, old flag spellings still work, and validation happens in the config."""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from graphtag.cli.main import INFO_FIELDS, build_parser
from graphtag.cli.options import config_from_args, flag_of
from graphtag.config import (
    COMBINER_METHODS,
    RunConfig,
    TrainConfig,
    choices_of,
    default_fanout,
)

REPO = Path(__file__).resolve().parents[1]


def _subparser(*path: str) -> argparse.ArgumentParser:
    p = build_parser()
    for name in path:
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        p = sub.choices[name]
    return p


def _actions(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The action setting each dest (the field's own option, not a store_const alias)."""
    out: dict[str, argparse.Action] = {}
    for a in p._actions:
        if a.dest not in out and a.default is not argparse.SUPPRESS:
            out[a.dest] = a
    return out


@pytest.mark.parametrize(("command", "cls", "names"), [
    (("train",), TrainConfig, None),
    (("run",), RunConfig, None),
    (("datasets", "info"), TrainConfig, INFO_FIELDS),
])
def test_every_config_field_is_an_option_with_its_default_and_choices(command, cls, names):
    parser = _subparser(*command)
    actions = _actions(parser)
    fields = [f for f in dataclasses.fields(cls) if names is None or f.name in names]
    assert names is None or len(fields) == len(names)
    for f in fields:
        assert f.name in actions, f"{cls.__name__}.{f.name} has no option"
        a = actions[f.name]
        assert flag_of(f.name) in a.option_strings, (f.name, a.option_strings)
        assert a.default == f.default and type(a.default) is type(f.default), f.name
        assert a.help and f.metadata["help"].split("%")[0][:20] in a.help
        want = choices_of(f)
        if want is None:
            assert a.choices is None, f.name
        elif a.choices is not None:
            assert tuple(a.choices) == want, f.name
        else:  # a list of names (methods): checked by the config, listed in the help
            assert all(c in a.help for c in want), f.name
    # nothing but the fields (and the few options of the command itself) is an option
    extra = set(actions) - {f.name for f in fields}
    assert extra <= {"help", "data", "debug", "out", "overwrite", "no_progress"}, extra


@pytest.mark.parametrize(("command", "cls"), [("train", TrainConfig), ("run", RunConfig)])
def test_the_parser_defaults_are_the_config_defaults(command, cls):
    args = build_parser().parse_args([command])
    assert config_from_args(cls, args) == cls()


def test_old_flag_spellings_still_work():
    args = build_parser().parse_args([
        "run", "--tasks", "5", "--hidden", "16", "--layers", "3", "--fanout", "7", "6", "5",
        "--groups", "2", "--subsets", "30", "--drop-constant-tasks", "--full-batch",
        "--rep-grad", "--offset", "--max-fit-nodes", "0", "--max-score-nodes", "300",
        "--tag-lookaheads", "0", "--pos-weight", "none", "--methods", "gradtag, stl",
        "--labels-format", "pairs", "--unknown-nodes", "drop", "--model", "sign"])
    cfg = config_from_args(RunConfig, args)
    assert (cfg.num_tasks, cfg.hidden_channels, cfg.num_layers) == (5, 16, 3)
    assert cfg.num_neighbors == (7, 6, 5) and (cfg.num_groups, cfg.num_subsets) == (2, 30)
    assert cfg.constant_tasks == "drop" and cfg.full_batch and cfg.rep_grad and cfg.offset
    assert cfg.max_fit_nodes is None and cfg.max_score_nodes == 300
    assert cfg.tag_lookaheads is None and cfg.pos_weight is None
    assert cfg.methods == ("gradtag", "stl") and cfg.model == "sign"
    assert (cfg.labels_format, cfg.unknown_nodes) == ("pairs", "drop")


def test_new_options_reach_every_field():
    args = build_parser().parse_args([
        "run", "--split", "0.5", "0.25", "0.25", "--proj-nnz", "2", "--grad-params", "all",
        "--grad-fanouts", "4", "3", "--patience", "none", "--constant-tasks", "drop",
        "--num-tasks", "6", "--no-offset", "--pos-weight", "2.5", "--solver", "bm"])
    cfg = config_from_args(RunConfig, args)
    assert cfg.split == (0.5, 0.25, 0.25) and cfg.proj_nnz == 2 and cfg.grad_params == "all"
    assert cfg.grad_fanouts == (4, 3) and cfg.patience is None
    assert cfg.constant_tasks == "drop" and cfg.num_tasks == 6 and cfg.offset is False
    assert cfg.pos_weight == 2.5 and cfg.solver == "bm"


@pytest.mark.parametrize("argv", [
    ["train", "--pos-weight", "lots"], ["train", "--model", "nope"],
    ["run", "--model", "mlp"], ["train", "--split", "0.5", "0.5"],
    ["run", "--grad-params", "head"], ["train", "--epochs", "many"],
])
def test_bad_values_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    assert argv[1] in capsys.readouterr().err


def test_every_declared_choice_is_accepted_by_the_config_and_others_refused():
    for cls in (TrainConfig, RunConfig):
        for f in dataclasses.fields(cls):
            choices = choices_of(f)
            if choices is None:
                continue
            tuple_valued = isinstance(f.default, tuple)
            for c in choices:
                cls(**{f.name: (c,) if tuple_valued else c})
            with pytest.raises(ValueError, match=f.name):
                cls(**{f.name: ("nope",) if tuple_valued else "nope"})


def test_combiner_methods_are_the_combiner_registry():
    from graphtag.optim.registry import COMBINERS

    assert set(COMBINER_METHODS) == set(COMBINERS) - {"equal"}


def test_fanout_default_lives_in_the_config():
    assert TrainConfig().num_neighbors == (15, 10)
    assert TrainConfig(num_layers=3).num_neighbors == (15, 10, 5)
    assert TrainConfig(num_layers=1).num_neighbors == (15,)
    assert RunConfig(num_layers=4).num_neighbors == (15, 10, 5, 5)
    assert default_fanout(5) == (15, 10, 5, 5, 5)
    assert TrainConfig(num_layers=3, num_neighbors=(4, 4, 4)).num_neighbors == (4, 4, 4)
    with pytest.raises(ValueError, match="num_neighbors has 2 fan-outs for num_layers=3"):
        TrainConfig(num_layers=3, num_neighbors=(4, 4))
    # config.json of a default run is what it was (stage fingerprints of old runs match)
    assert TrainConfig().to_json()["num_neighbors"] == [15, 10]
    cfg = RunConfig(num_layers=3)
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_validation_happens_in_the_config_before_any_work():
    with pytest.raises(ValueError) as e:
        RunConfig(lam=-1.0, dropout=1.5, proj_nnz=0, split=(0.5, 0.6, 0.1))
    msg = str(e.value)
    for name in ("lam", "dropout", "proj_nnz", "split"):
        assert name in msg
    with pytest.raises(ValueError, match="per-sample gradients"):
        RunConfig(model="mlp")


def _readme_commands() -> list[tuple[str, list[str]]]:
    """(subcommand, flags) of every ``graphtag train/run/datasets info`` line of the docs."""
    out = []
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        text = re.sub(r"\\\n\s*", " ", doc.read_text())  # join continued lines
        for line in text.splitlines():
            for m in re.finditer(r"graphtag (train|run|datasets info)\b([^`#|]*)", line):
                flags = [t.split("=")[0] for t in shlex.split(m.group(2).replace("...", ""))
                         if t.startswith("--")]
                out.append((m.group(1), flags))
    return out


def test_every_flag_shown_in_the_docs_is_an_option():
    cmds = _readme_commands()
    assert len(cmds) > 10 and any(flags for _, flags in cmds)
    for command, flags in cmds:
        p = _subparser(*command.split())
        known = {s for a in p._actions for s in a.option_strings}
        for flag in flags:
            assert flag in known, f"graphtag {command} {flag}"


def test_building_the_parser_imports_no_torch():
    code = ("import sys; from graphtag.cli.main import build_parser; "
            "build_parser().parse_args(['run', '--tasks', '5', '--methods', 'gradtag,stl']); "
            "build_parser().parse_args(['datasets', 'info', '--data', 'x.csv']); "
            "print(sorted(m for m in ('torch', 'torch_geometric') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


#: Lines of the docs about other programs (pip, torchrun, srun, scripts), whose flags are
#: theirs (a graphtag command on such a line is checked by the test above).
_OTHER_PROGRAMS = re.compile(
    r"\.py\b|\bpip\b|torchrun|\bsrun\b|--nnodes|--nproc|--rdzv|--standalone|--master-"
    r"|--node-rank|--no-build-isolation")


def test_every_flag_named_in_the_docs_is_a_graphtag_option():
    p = build_parser()
    known = {s for a in p._actions for s in a.option_strings}
    stack = [p]
    while stack:
        for a in stack.pop()._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    known |= {s for b in sub._actions for s in b.option_strings}
                    stack.append(sub)
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        text = re.sub(r"\\\n\s*", " ", doc.read_text())  # join continued lines
        for line in text.splitlines():
            if _OTHER_PROGRAMS.search(line):
                continue
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", line):
                assert flag in known, f"{doc.name}: {flag} ({line.strip()[:80]})"
