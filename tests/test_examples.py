"""The scripts in ``examples/`` run as a user runs them (a fresh interpreter, tiny settings)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run(args: list[str], tmp_path: Path, timeout: float = 300) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{args} exited with {proc.returncode}:\n{out[-4000:]}"
    return proc.stdout


def metric(out: str, name: str) -> float:
    found = re.findall(rf"{name} (-?[0-9.]+)", out)
    assert found, f"no '{name}' in the output:\n{out}"
    return float(found[-1])


def test_01_neighbor_sampled_training(tmp_path):
    out = run([str(EXAMPLES / "01_neighbor_sampled_training.py"), "--epochs", "1", "--tasks", "5",
               "--nodes", "400"], tmp_path)
    assert "5 tasks" in out and "epoch   1" in out
    assert 0.0 <= metric(out, "test macro-F1") <= 1.0


def test_02_per_sample_gradients(tmp_path):
    out = run([str(EXAMPLES / "02_per_sample_gradients.py"), "--epochs", "1", "--tasks", "8",
               "--dim", "16", "--nodes", "32"], tmp_path)
    assert "batch gradients: (32, 8, 16)" in out
    assert "store: 32 nodes x 8 tasks x 16 dims" in out
    assert -1.0 <= metric(out, "within planted groups") <= 1.0


def test_03_group_tasks(tmp_path):
    out = run([str(EXAMPLES / "03_group_tasks.py"), "--epochs", "1", "--tasks", "4",
               "--groups", "2"], tmp_path)
    assert out.startswith("groups: [[")
    for line in ("one model, all tasks", "one model per group", "shared encoder, group heads"):
        assert line in out
    assert 0.0 <= metric(out, "test macro-F1") <= 1.0


def test_04_torchrun_single_process(tmp_path):
    out = run([str(EXAMPLES / "04_torchrun.py"), "--epochs", "1", "--tasks", "4"], tmp_path)
    assert "rank 0/1" in out
    assert "1 process(es): test macro-F1" in out


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_04_torchrun_two_processes(tmp_path):
    out = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(EXAMPLES / "04_torchrun.py"), "--epochs", "1", "--tasks", "4"], tmp_path)
    assert "rank 0/2" in out and "rank 1/2" in out
    assert "2 process(es): test macro-F1" in out
