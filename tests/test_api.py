"""The public surface: every exported name resolves, README's names exist, importing graphtag
changes no global state, the shared JSON writer and the grouping registry."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import graphtag

ROOT = Path(graphtag.__file__).resolve().parent.parent


def _modules() -> list[str]:
    names = ["graphtag"]
    for info in pkgutil.walk_packages(graphtag.__path__, "graphtag."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf == "__main__" or leaf.startswith("_sjlt"):  # runs the CLI / a C extension
            continue
        names.append(info.name)
    return sorted(names)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("name", _modules())
def test_every_name_in_all_resolves(name: str) -> None:
    mod = importlib.import_module(name)
    exported = getattr(mod, "__all__", None)
    if exported is None:
        return
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(mod, n)]
    assert not missing, f"{name}.__all__ names {missing}, which do not resolve"


def test_readme_python_names_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    checked = 0
    for block in blocks:
        alias = re.search(r"^import graphtag as (\w+)$", block, flags=re.M)
        if alias:
            for name in set(re.findall(rf"\b{alias.group(1)}\.(\w+)", block)):
                assert hasattr(graphtag, name), f"README uses graphtag.{name}"
                checked += 1
        for mod, names in re.findall(r"^from (graphtag[\w.]*) import ([\w, ]+)$", block,
                                     flags=re.M):
            m = importlib.import_module(mod)
            for name in (n.strip() for n in names.split(",")):
                assert hasattr(m, name), f"README imports {name} from {mod}"
                checked += 1
    # dotted names in the prose: `graphtag.projection.SparseProjector(...)`, ...
    for mod, name in set(re.findall(r"`(graphtag(?:\.[a-z_]+)*)\.([A-Za-z_]\w*)[(`]", readme)):
        m = importlib.import_module(mod)
        assert hasattr(m, name) or importlib.util.find_spec(f"{mod}.{name}"), f"{mod}.{name}"
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("name", ["TrainConfig", "RunConfig", "train_run", "train_groups",
                                  "Trainer", "GradTAG", "run_pipeline", "load_dataset"])
def test_top_level_names(name: str) -> None:
    assert name in graphtag.__all__
    assert getattr(graphtag, name) is not None
    assert name in dir(graphtag)


def test_top_level_names_are_the_subpackage_objects() -> None:
    from graphtag.config import TrainConfig
    from graphtag.training.grouped import train_groups
    from graphtag.training.run import train_run

    assert graphtag.TrainConfig is TrainConfig is graphtag.training.TrainConfig
    assert graphtag.train_run is train_run and graphtag.train_groups is train_groups
    assert graphtag.RunConfig is graphtag.pipeline.RunConfig


def test_import_graphtag_leaves_warning_filters_and_heavy_modules_alone() -> None:
    r = _python(
        "import sys, warnings\n"
        "before = list(warnings.filters)\n"
        "import graphtag\n"
        "assert warnings.filters == before, warnings.filters\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_importing_every_module_leaves_warning_filters_alone() -> None:
    # third-party libraries may install filters of their own when imported: load them first,
    # so what is compared is what graphtag's own modules do
    mods = [m for m in _modules() if m != "graphtag"]
    r = _python(
        "import sys, warnings, importlib\n"
        "import numpy, scipy, sklearn, torch, torch_geometric, torch_sparse, tqdm.auto\n"
        "import torch_geometric.loader, torch_geometric.nn\n"
        "before = list(warnings.filters)\n"
        "import graphtag\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "new = [f for f in warnings.filters if f not in before]\n"
        "assert not new, new\n"
        "print('ok')\n"
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_sparse_inference_is_quiet_and_leaves_filters_alone() -> None:
    import warnings

    import torch
    from torch_sparse import SparseTensor

    from graphtag.models import MultitaskGNN

    torch.manual_seed(0)
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    adj_t = SparseTensor.from_edge_index(ei, sparse_sizes=(4, 4)).t()
    model = MultitaskGNN(3, 8, num_tasks=2).eval()
    x = torch.randn(4, 3)
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model.inference(x, adj_t)
        emb = model.embed(x, adj_t)
    assert out.shape == (4, 2) and emb.shape == (4, 8)
    assert not [w for w in caught if "parse" in str(w.message)], [str(w.message) for w in caught]
    assert warnings.filters == before
    assert torch.allclose(out, model(x, ei), atol=1e-5)


# ------------------------------------------------------------------------------ graphtag._io
def test_write_json_is_atomic_and_round_trips(tmp_path: Path) -> None:
    from graphtag._io import read_json, write_json

    f = tmp_path / "a.json"
    write_json(f, {"x": [1, 2], "y": None})
    assert read_json(f) == {"x": [1, 2], "y": None}
    assert json.loads(f.read_text()) == {"x": [1, 2], "y": None}
    write_json(f, {"p": tmp_path}, default=str)
    assert read_json(f) == {"p": str(tmp_path)}
    with pytest.raises(TypeError):  # not serialisable: the old file stays whole
        write_json(f, {"p": object()})
    assert read_json(f) == {"p": str(tmp_path)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temp files left


def test_no_module_keeps_its_own_json_writer() -> None:
    copies = [str(p.relative_to(ROOT)) for p in (ROOT / "graphtag").rglob("*.py")
              if re.search(r"^def _write_json\b", p.read_text(), flags=re.M)]
    assert not copies, copies


# ------------------------------------------------------------------- the grouping registry
def test_grouping_registry_is_the_one_source() -> None:
    from graphtag.config import GROUPING_METHODS as RUN_METHODS
    from graphtag.grouping import GROUPING_METHODS, GROUPINGS, RUN_GROUPINGS

    assert RUN_METHODS == RUN_GROUPINGS == tuple(n for n, m in GROUPINGS.items() if m.run)
    assert {"gradtag", "spectral", "random", "stl", "dmtg", "tag", "oracle",
            "planted"} == set(RUN_METHODS)
    assert set(GROUPING_METHODS) == {n for n, m in GROUPINGS.items() if m.reads == "affinity"}
    assert all(m.name == n for n, m in GROUPINGS.items())


def test_grouping_registry_calls() -> None:
    from graphtag.grouping import GROUPINGS, planted_affinity, sdp_groups

    A, _ = planted_affinity(12, 3, noise=0.2, seed=0)
    assert GROUPINGS["gradtag"](A, 3, 0, solver="cvxpy") == sdp_groups(A, 3, solver="cvxpy")
    assert GROUPINGS["stl"](A, 3, 0) == [[i] for i in range(12)]
    with pytest.raises(TypeError, match="takes no option"):
        GROUPINGS["spectral"](A, 3, 0, solver="bm")
    assert GROUPINGS["tag"].select({"solver": "bm", "lr": 1.0}) == {"solver": "bm"}


def test_planted_grouping_reads_the_datas_task_groups() -> None:
    import torch
    from torch_geometric.data import Data

    from graphtag.grouping import GROUPINGS

    data = Data(task_group=torch.tensor([1, 0, 1, 2, 0]))
    assert GROUPINGS["planted"](data, 99, 0) == [[1, 4], [0, 2], [3]]  # k is ignored
    with pytest.raises(ValueError, match="no known task groups"):
        GROUPINGS["planted"](Data(), 3, 0)


def test_registry_and_config_import_without_torch() -> None:
    r = _python("import sys\nimport graphtag.config, graphtag.grouping\n"
                "assert 'torch' not in sys.modules and 'numpy' not in sys.modules\nprint('ok')")
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
