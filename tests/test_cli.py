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


# ------------------------------------------------------------------ your own data
def _planted_mat(path, n=240, labels=6, seed=0):
    """A small multi-label .mat graph: two planted label groups over two communities."""
    import numpy as np
    import scipy.io
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    block = np.arange(n) % 2
    p = np.where(block[:, None] == block[None, :], 0.08, 0.01)
    a = np.triu(rng.random((n, n)) < p, 1)
    group = np.zeros((n, labels))
    for t in range(labels):
        on = (block == t % 2) & (rng.random(n) < 0.6)
        group[on, t] = 1
    scipy.io.savemat(path, {"network": sp.csr_matrix(a + a.T), "group": sp.csr_matrix(group)})


def test_run_on_an_unseen_mat_file_end_to_end(tmp_path, monkeypatch, capsys):
    from graphtag.cli.main import main

    _planted_mat(tmp_path / "unseen graph.mat")
    monkeypatch.chdir(tmp_path)  # in-process: a subprocess would spend most time importing
    code = main(["run", "--data", "unseen graph.mat", "--groups", "2", "--features", "degree",
                 "--epochs", "2", "--hidden", "16", "--model", "sign", "--subsets", "30",
                 "--methods", "gradtag", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "runs" / "unseen graph-gradtag"
    rep = json.loads((out / "report.json").read_text())
    assert rep["dataset"]["num_tasks"] == 6 and len(rep["groups"]["gradtag"]) == 2
    assert (out / "report.md").exists()


def test_datasets_info_on_an_edge_list(tmp_path, monkeypatch, capsys):
    (tmp_path / "e.csv").write_text("src,dst\nx,y\ny,z\nz,w\n")
    (tmp_path / "l.csv").write_text("node,a,b\nx,1,0\ny,1,1\nz,0,1\nw,0,0\n")
    from graphtag.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["datasets", "info", "--data", "e.csv", "--labels", "l.csv"]) == 0
    text = capsys.readouterr().out
    assert "nodes          4" in text and "edges          3 (undirected)" in text
    assert "positives/task min 2, median 2, max 2" in text and "label density  0.5000" in text


@pytest.mark.parametrize(("files", "args", "msg"), [
    ({"l.csv": "node,a\nx,1\nq,0\n"}, ["--labels", "l.csv"],
     "l.csv, line 3: node 'q' is not in the graph"),
    ({"l.csv": "node,a\nx,1\ny,1\nz,1\n"}, ["--labels", "l.csv"],
     "whose every labelled node is positive"),
    ({}, [], "carries no labels"),
    ({}, ["--labels", "missing.csv"], "missing.csv: no such labels file"),
])
def test_bad_data_is_one_line_exit_2_and_no_run_folder(tmp_path, monkeypatch, capsys, files,
                                                       args, msg):
    from graphtag.cli.main import main

    (tmp_path / "e.csv").write_text("x,y\ny,z\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--data", "e.csv", *args, "--out", "run", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and msg in err
    assert err.count("\n") == 1 and err.startswith("graphtag train: error: ")
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(tmp_path, capsys):
    from graphtag.cli.main import main

    code = main(["datasets", "info", "--data", str(tmp_path / "nope.mat"), "--debug"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and "nope.mat" in err.splitlines()[-1]


def test_run_config_lists_every_bad_setting(tmp_path, capsys):
    from graphtag.cli.main import main

    code = main(["run", "--lam", "-1", "--dropout", "1.5", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "lam must be a number >= 0" in err and "dropout must be in [0, 1)" in err
    assert not (tmp_path / "r").exists()
