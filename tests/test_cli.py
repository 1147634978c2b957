import json
import subprocess
import sys

import pytest


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "graphtag", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_datasets_list(tmp_path):
    r = _run("datasets", "list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "amazon-top100" in r.stdout and "blogcatalog" in r.stdout


def test_datasets_info_on_shipped_default(tmp_path):
    r = _run("datasets", "info", "--features", "degree", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "4,336" in r.stdout and "14,100" in r.stdout and "tasks          100" in r.stdout


def test_train_writes_run_folder_and_refuses_other_config(tmp_path):
    args = ["train", "--epochs", "3", "--hidden", "32", "--no-progress", "--out", "run1"]
    r = _run(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "test macro-F1" in r.stdout
    run = tmp_path / "run1"
    m = json.loads((run / "metrics.json").read_text())
    assert m["num_tasks"] == 100 and 0 <= m["test_macro_f1"] <= 1
    assert m["test_macro_f1"] > m["constant_test_macro_f1"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["epochs"] == 3 and (run / "checkpoints" / "last.pt").exists()
    # Same command again: resumes the finished run, same numbers.
    r2 = _run(*args, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert json.loads((run / "metrics.json").read_text())["test_macro_f1"] == m["test_macro_f1"]
    # A different config into the same folder is refused, naming the fix.
    r3 = _run("train", "--epochs", "4", "--no-progress", "--out", "run1", cwd=tmp_path)
    assert r3.returncode == 2 and "--overwrite" in r3.stderr


@pytest.mark.parametrize(("args", "msg"), [
    (["train", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    (["train", "--pos-weight", "lots"], "--pos-weight"),
    (["train", "--tasks", "5000"], "num_tasks=5000"),
])
def test_bad_arguments_give_clear_errors(tmp_path, args, msg):
    r = _run(*args, "--no-progress", cwd=tmp_path)
    assert r.returncode != 0
    assert msg in r.stderr


def test_train_with_a_combiner(tmp_path):
    r = _run("train", "--dataset", "synthetic", "--tasks", "6", "--model", "sign", "--epochs",
             "3", "--hidden", "16", "--combiner", "pcgrad", "--no-progress", "--out", "pc",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "pc" / "config.json").read_text())
    assert cfg["combiner"] == "pcgrad"
    m = json.loads((tmp_path / "pc" / "metrics.json").read_text())
    assert m["test_macro_f1"] > m["constant_test_macro_f1"]
