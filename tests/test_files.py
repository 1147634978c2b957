"""Your own data: every format round-trips, every bad input gets its one clear error."""

import gzip
import os
import warnings

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import torch

from graphtag.datasets import DataFormatError, MultiLabelMat, load_dataset, read_graph
from graphtag.datasets.files import (
    detect_format,
    load_file,
    select_tasks,
    source_fingerprint,
    summarize,
)

# A 6-node graph (a path a-b-c-d-e plus f-a) with 3 labels; "t2" is positive on a..c.
NODES = ["a", "b", "c", "d", "e", "f"]
EDGES = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("f", "a")]
Y = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0]], np.uint8)
TASKS = ["t0", "t1", "t2"]


def _write(path, text, gz=False):
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def _edges_csv(tmp_path, name="edges.csv", sep=",", header="source,target", gz=False):
    lines = ([header.replace(",", sep)] if header else []) + [f"{u}{sep}{v}" for u, v in EDGES]
    return _write(tmp_path / name, "\n".join(lines) + "\n", gz)


def _table(tmp_path, name="labels.csv", sep=","):
    rows = [sep.join(["node", *TASKS])]
    rows += [sep.join([n, *map(str, r)]) for n, r in zip(NODES, Y, strict=True)]
    return _write(tmp_path / name, "\n".join(rows) + "\n")


def _pairs(tmp_path, name="labels.tsv"):
    rows = ["node\tlabel"] + [f"{n}\t{TASKS[t]}" for i, n in enumerate(NODES)
                              for t in range(3) if Y[i, t]]
    return _write(tmp_path / name, "\n".join(rows) + "\n")


def _as_dict(g):
    """{node id: labels tuple} and the set of edges by id, independent of numbering."""
    ids = [str(i) for i in g.node_ids]
    order = [g.task_names.index(t) for t in TASKS]
    lab = {ids[i]: tuple(int(v) for v in g.y[i, order]) for i in range(g.num_nodes)}
    edges = {frozenset((ids[u], ids[v])) for u, v in g.edges.T}
    return lab, edges


def _expected():
    return ({n: tuple(map(int, r)) for n, r in zip(NODES, Y, strict=True)},
            {frozenset(e) for e in EDGES})


# ----------------------------------------------------------------------- round trips
def test_edge_csv_with_label_table_round_trips(tmp_path):
    g = read_graph(_edges_csv(tmp_path), _table(tmp_path))
    assert _as_dict(g) == _expected()
    assert g.label_mask is None and g.task_names == TASKS


def test_gzipped_tsv_with_pairs_round_trips(tmp_path):
    e = _edges_csv(tmp_path, "edges.tsv.gz", sep="\t", header=None, gz=True)
    g = read_graph(e, _pairs(tmp_path))
    lab, edges = _as_dict(g)
    exp_lab, exp_edges = _expected()
    assert edges == exp_edges
    assert {k: v for k, v in lab.items() if any(v)} == {k: v for k, v in exp_lab.items() if any(v)}


def test_community_lines_and_integer_ids(tmp_path):
    e = _write(tmp_path / "g.txt", "# int ids, space separated\n10 20\n20 30\n30 40\n40 10\n")
    c = _write(tmp_path / "groups.txt", "10 20 30\n30 40\n")
    g = read_graph(e, c)
    assert g.node_ids.tolist() == [10, 20, 30, 40]  # integer ids sorted numerically
    assert g.y.tolist() == [[1, 0], [1, 0], [1, 1], [0, 1]]
    assert g.task_names == ["line 1", "line 2"]


def test_table_with_empty_cells_gives_label_mask(tmp_path):
    e = _edges_csv(tmp_path)
    lab = _write(tmp_path / "l.csv", "id,x,y\na,1,\nb,0,1\nc,,0\nd,1,0\n")
    g = read_graph(e, lab)
    i = {str(n): k for k, n in enumerate(g.node_ids)}
    assert not g.label_mask[i["a"], 1] and not g.label_mask[i["c"], 0]
    assert not g.label_mask[i["e"]].any()  # no row: unknown, not negative
    assert g.label_mask[i["b"]].all() and g.y[i["b"]].tolist() == [0, 1]


def test_ids_beyond_int64_are_names_in_generic_edge_lists(tmp_path):
    big = 2**64 + 5
    e = _write(tmp_path / "e.txt", f"1\t{big}\n{big}\t2\n1\t2\n")
    lab = _write(tmp_path / "l.txt", f"1\tA\n{big}\tA\n2\tB\n1\tB\n")
    g = read_graph(e, lab)
    assert sorted(map(str, g.node_ids)) == sorted(["1", "2", str(big)])
    assert g.edges.shape == (2, 3) and g.y.sum() == 4


def test_snap_files_by_path_find_their_community_file(tmp_path):
    _write(tmp_path / "com-toy.ungraph.txt.gz", "# toy\n1\t2\n2\t3\n3\t4\n4\t5\n5\t1\n9\t8\n",
           gz=True)
    _write(tmp_path / "com-toy.top5000.cmty.txt", "1\t2\t3\n3\t4\n1\t2\t3\n")
    data = load_dataset(str(tmp_path / "com-toy.ungraph.txt.gz"), features="degree", log=False)
    # duplicate community merged, induced on members of the 2 distinct ones (nodes 1..4)
    assert data.y.shape == (4, 2) and data.node_ids.tolist() == [1, 2, 3, 4]


def test_mat_with_any_name_and_features(tmp_path):
    net = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]))
    group = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1], [0, 0]]))
    feats = np.arange(8, dtype=float).reshape(4, 2)
    scipy.io.savemat(tmp_path / "my graph.mat", {"network": net, "group": group,
                                                  "features": feats})
    data = load_dataset(str(tmp_path / "my graph.mat"), split=(0.5, 0.25, 0.25), log=False)
    assert data.y.tolist() == group.toarray().tolist()
    assert torch.equal(data.x, torch.tensor(feats, dtype=torch.float32))  # file's, not spectral
    assert data.edge_index.size(1) == 8


def test_multilabelmat_ranks_empty_labels_last(tmp_path):
    # uint8 counts negated wrap around: an empty label used to rank first
    raw = tmp_path / "blogcatalog" / "raw"
    raw.mkdir(parents=True)
    group = np.zeros((5, 3))
    group[:, 1] = [1, 1, 1, 0, 0]
    group[:2, 2] = 1
    net = sp.csr_matrix(np.eye(5, k=1) + np.eye(5, k=-1))
    scipy.io.savemat(raw / "blogcatalog.mat", {"network": net, "group": sp.csr_matrix(group)})
    d = MultiLabelMat(tmp_path, "blogcatalog", num_tasks=2, features="degree", log=False)[0]
    assert d.community_index.tolist() == [1, 2]


def test_pyg_data_round_trips_with_masks_and_features(tmp_path):
    from torch_geometric.data import Data

    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    y = torch.tensor([[1, 0], [0, 1], [1, float("nan")], [0, 1]])
    x = torch.randn(4, 3)
    masks = {k: torch.tensor(v) for k, v in (("train_mask", [1, 1, 0, 0]),
                                             ("val_mask", [0, 0, 1, 0]),
                                             ("test_mask", [0, 0, 0, 1]))}
    torch.save(Data(x=x, edge_index=ei, y=y, **{k: m.bool() for k, m in masks.items()}),
               tmp_path / "g.pt")
    d = load_dataset(str(tmp_path / "g.pt"), log=False)
    assert torch.equal(d.x, x) and d.edge_index.size(1) == 6
    assert d.y.tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]
    assert d.label_mask.tolist() == [[True] * 2, [True] * 2, [True, False], [True] * 2]
    assert d.train_mask.tolist() == [True, True, False, False]
    # a plain dict of tensors works too, masks as node indices
    torch.save({"edge_index": ei, "y": y.nan_to_num(0), "train_mask": torch.tensor([0, 1]),
                "val_mask": torch.tensor([2]), "test_mask": torch.tensor([3])}, tmp_path / "d.pt")
    g = read_graph(tmp_path / "d.pt")
    assert g.masks[0].tolist() == [True, True, False, False] and g.x is None


def _ogb_fixture(root, n=8, tasks=112):
    folder = root / "ogbn_proteins"
    (folder / "raw").mkdir(parents=True)
    split = folder / "split" / "species"
    split.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(n, tasks))
    y[0], y[1] = 1, 0  # every task has both classes

    def gz(path, rows):
        _write(path, "".join(",".join(map(str, r)) + "\n" for r in rows), gz=True)

    edges = [(i, (i + 1) % n) for i in range(n)]
    gz(folder / "raw" / "edge.csv.gz", edges)
    gz(folder / "raw" / "num-node-list.csv.gz", [[n]])
    gz(folder / "raw" / "num-edge-list.csv.gz", [[len(edges)]])
    gz(folder / "raw" / "node-label.csv.gz", y.tolist())
    gz(folder / "raw" / "edge-feat.csv.gz", [[0.5] * 8 for _ in edges])  # unused
    gz(split / "train.csv.gz", [[0], [1], [2], [3]])
    gz(split / "valid.csv.gz", [[4], [5]])
    gz(split / "test.csv.gz", [[6], [7]])
    return folder, y


def test_ogb_folder_loads_with_its_split_and_evaluator(tmp_path):
    pytest.importorskip("ogb")
    from graphtag.datasets.benchmarks import ogb_rocauc

    folder, y = _ogb_fixture(tmp_path)
    assert detect_format(folder) == "ogb"
    d = load_dataset(str(folder), features="degree", log=False)
    assert d.ogb_name == "ogbn-proteins" and d.y.shape == (8, 112)
    assert torch.equal(d.y, torch.tensor(y, dtype=torch.float32))
    assert d.train_mask.tolist() == [True] * 4 + [False] * 4 and int(d.test_mask.sum()) == 2
    assert ogb_rocauc("ogbn-proteins", y, y.astype(float)) == 1.0
    assert ogb_rocauc("ogbn-proteins", y[:, :5], y[:, :5]) is None  # not all 112 tasks


def test_graphml_with_label_attribute(tmp_path):
    import networkx as nx

    G = nx.Graph()
    for n, r in zip(NODES, Y, strict=True):
        G.add_node(n, labels=",".join(t for t, v in zip(TASKS, r, strict=True) if v))
    G.add_edges_from(EDGES)
    nx.write_graphml(G, tmp_path / "g.graphml")
    lab, edges = _as_dict(read_graph(tmp_path / "g.graphml"))
    assert (lab, edges) == _expected()


def test_union_of_split_graphs(tmp_path):
    from torch_geometric.data import Data

    from graphtag.datasets.benchmarks import union_graphs

    def g(n):
        return Data(x=torch.ones(n, 2), y=torch.ones(n, 3),
                    edge_index=torch.tensor([[0], [n - 1]]), num_nodes=n)

    u = union_graphs({"train": [g(2), g(3)], "val": [g(2)], "test": [g(1)]})
    assert u["edge_index"].tolist() == [[0, 2, 5, 7], [1, 4, 6, 7]]
    assert u["val_mask"].tolist() == [False] * 5 + [True] * 2 + [False]


# --------------------------------------------------------------------------- caching
def test_cache_next_to_source_keyed_by_bytes_and_options(tmp_path):
    e, lab = _edges_csv(tmp_path), _table(tmp_path)
    d1 = load_file(e, lab, features="degree", log=False)
    cached = list((tmp_path / ".graphtag-cache").glob("edges.*.pt"))
    assert len(cached) == 1
    d2 = load_file(e, lab, features="degree", log=False)
    assert torch.equal(d1.y, d2.y) and torch.equal(d1.x, d2.x)
    load_file(e, lab, features="random", num_features=4, log=False)  # other options
    assert len(list((tmp_path / ".graphtag-cache").glob("edges.*.pt"))) == 2
    opts = {"a": 1}
    fp = source_fingerprint([e, lab], opts)
    _write(lab, lab.read_text().replace("f,0,0,0", "f,1,0,0"))
    assert source_fingerprint([e, lab], opts) != fp
    assert load_file(e, lab, features="degree", log=False).y.sum() == d1.y.sum() + 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cache_falls_back_to_root_when_source_folder_is_read_only(tmp_path):
    src = tmp_path / "ro"
    src.mkdir()
    e, lab = _edges_csv(src), _table(src)
    src.chmod(0o555)
    try:
        load_file(e, lab, features="degree", root=tmp_path / "data", log=False)
    finally:
        src.chmod(0o755)
    assert list((tmp_path / "data" / "cache").glob("edges.*.pt"))


def test_summary_counts(tmp_path):
    s = summarize(read_graph(_edges_csv(tmp_path), _table(tmp_path)))
    assert (s["nodes"], s["edges"], s["tasks"]) == (6, 5, 3)
    assert (s["positives_min"], s["positives_median"], s["positives_max"]) == (3, 3, 3)
    assert s["label_density"] == pytest.approx(9 / 18) and s["components"] == 1


# ------------------------------------------------------------------------- bad input
def _raises(match, fn, *a, **kw):
    with pytest.raises(DataFormatError, match=match):
        fn(*a, **kw)


def test_labels_naming_no_known_node(tmp_path):
    lab = _write(tmp_path / "l.csv", "node,t\nx,1\ny,0\n")
    _raises(r"none of its 2 labelled node ids occur in the graph .*must use the graph's node "
            "ids", read_graph, _edges_csv(tmp_path), lab)


def test_labels_naming_some_unknown_nodes_and_the_policies(tmp_path):
    e = _edges_csv(tmp_path)
    lab = _write(tmp_path / "l.tsv", "a\tA\nzz\tA\nb\tB\n")
    _raises(r"l\.tsv, line 2: node 'zz' is not in the graph \(1 such.*--unknown-nodes drop",
            read_graph, e, lab)
    with pytest.warns(UserWarning, match="ignored labels of 1 node"):
        assert read_graph(e, lab, unknown_nodes="drop").num_nodes == 6
    with pytest.warns(UserWarning, match="added 1 labelled node"):
        g = read_graph(e, lab, unknown_nodes="add")
    assert g.num_nodes == 7 and str(g.node_ids[-1]) == "zz" and g.y[-1].tolist() == [1, 0]


def test_snap_community_member_not_in_graph(tmp_path):
    e = _write(tmp_path / "com-x.ungraph.txt", "1\t2\n2\t3\n")
    _write(tmp_path / "com-x.top5000.cmty.txt", "1\t2\n3\t77\n")
    _raises(r"node 77 \(community #1, 0-based\) is not in the graph", read_graph, e)


def test_empty_and_all_positive_tasks(tmp_path):
    e = _edges_csv(tmp_path)
    lab = _write(tmp_path / "l.csv", "node,none,all,ok\n" + "".join(
        f"{n},0,1,{i % 2}\n" for i, n in enumerate(NODES)))
    g = read_graph(e, lab)
    _raises(r"1 task\(s\) without a positive node \('none'\) and 1 task\(s\) whose every "
            r"labelled node is positive \('all'\).*--drop-constant-tasks", select_tasks, g)
    with pytest.warns(UserWarning, match="Skipped them"):
        assert select_tasks(g, constant_tasks="drop").task_names == ["ok"]


def test_duplicate_node_rows(tmp_path):
    lab = _write(tmp_path / "l.csv", "node,t\na,1\nb,0\na,0\n")
    _raises(r"node 'a' has two rows \(lines 2 and 4\)", read_graph, _edges_csv(tmp_path), lab)


def test_bad_label_value_names_line_and_column(tmp_path):
    e = _edges_csv(tmp_path)
    _raises(r"l\.csv, line 3, column 'u': value 2 is not a label",
            read_graph, e, _write(tmp_path / "l.csv", "node,t,u\na,1,0\nb,0,2\n"))
    _raises(r"m\.csv, line 2, column 't': 'yes' is not a label",
            read_graph, e, _write(tmp_path / "m.csv", "node,t,u\na,yes,0\n"))


def test_row_with_wrong_field_count(tmp_path):
    _raises(r"l\.csv, line 3: 4 fields but the header has 3", read_graph,
            _edges_csv(tmp_path), _write(tmp_path / "l.csv", "node,t,u\na,1,0\nb,0,1,1\n"))
    _raises(r"e\.csv, line 3: expected two node ids, found 1", read_graph,
            _write(tmp_path / "e.csv", "a,b\nb,c\nc\n"), _table(tmp_path))


def test_snap_id_overflow_is_named(tmp_path):
    from graphtag.datasets import read_edge_list

    p = _write(tmp_path / "g.txt", f"1\t2\n3\t{2**63}\n")
    _raises(rf"g\.txt, line 2: node id {2**63} does not fit in 64 bits", read_edge_list, p)
    c = _write(tmp_path / "c.txt", f"1 2\n{2**64}\n")
    from graphtag.datasets import read_communities

    _raises(r"c\.txt, line 2: a node id is out of the int64 range \(ids must be < 2\^63",
            read_communities, c)


def test_non_finite_features(tmp_path):
    net = sp.csr_matrix(np.eye(3, k=1) + np.eye(3, k=-1))
    feats = np.ones((3, 2))
    feats[2, 1] = np.nan
    scipy.io.savemat(tmp_path / "g.mat", {"network": net, "group": np.eye(3),
                                          "attributes": feats})
    _raises(r"g\.mat: variable 'attributes': node features row 2 \(node '2'\), column 1 is "
            r"nan.*Replace them", read_graph, tmp_path / "g.mat")
    torch.save({"edge_index": torch.tensor([[0], [1]]), "y": torch.eye(2),
                "x": torch.tensor([[1.0], [float("inf")]])}, tmp_path / "g.pt")
    _raises(r"row 1 \(node '1'\), column 0 is inf", read_graph, tmp_path / "g.pt")


@pytest.mark.parametrize(("obj", "match"), [
    ({"edge_index": [[0], [1]], "y": [0, 1]}, r"y has shape \(2,\).*one_hot"),
    ({"edge_index": [[0], [5]], "y": [[0], [1]]}, r"edge_index\[:, 0\] names node 5, but the "
                                                  r"graph has 2 nodes"),
    ({"edge_index": [[0], [1]], "y": [[0], [1]], "x": [[1.0]] * 3},
     r"features have shape \(3, 1\) but the graph has 2 nodes"),
    ({"edge_index": [[0], [1]], "y": [[0], [1]], "num_nodes": 3}, "y has 2 rows but num_nodes"),
    ({"edge_index": [[0], [1]], "y": [[0.5], [1]]}, r"y\[0, 0\] = 0.5"),
    ({"edge_index": [[0], [1]], "y": [[0], [1]], "train_mask": [True, False]},
     r"has \['train_mask'\] but not \['val_mask', 'test_mask'\]"),
    ({"y": [[0], [1]]}, "no 'edge_index'"),
])
def test_pyg_shape_and_value_problems(tmp_path, obj, match):
    torch.save({k: torch.tensor(v) if isinstance(v, list) else v for k, v in obj.items()},
               tmp_path / "g.pt")
    _raises(match, read_graph, tmp_path / "g.pt")


def test_mat_shape_mismatch_and_truncation(tmp_path):
    scipy.io.savemat(tmp_path / "g.mat", {"network": sp.eye(3), "group": np.eye(4)})
    _raises("network must be square with as many rows as group", read_graph, tmp_path / "g.mat")
    scipy.io.savemat(tmp_path / "h.mat", {"network": sp.eye(50), "group": np.eye(50)})
    data = (tmp_path / "h.mat").read_bytes()
    (tmp_path / "h.mat").write_bytes(data[: len(data) // 2])
    _raises(r"h\.mat: not a readable MATLAB \.mat file.*truncated", read_graph,
            tmp_path / "h.mat")


def test_truncated_and_unreadable_files(tmp_path):
    e = _edges_csv(tmp_path, "e.csv.gz", gz=True)
    raw = e.read_bytes()
    e.write_bytes(raw[: len(raw) - 12])
    _raises(r"e\.csv\.gz: truncated or corrupt compressed file", read_graph, e,
            _table(tmp_path))
    bad = tmp_path / "b.csv"
    bad.write_bytes(b"a,b\n\xff\xfe,c\n")
    _raises(r"b\.csv: not UTF-8 text", read_graph, bad, _table(tmp_path))
    torch.save({"edge_index": torch.zeros(2, 100, dtype=torch.long), "y": torch.zeros(100, 2)},
               tmp_path / "g.pt")
    pt = (tmp_path / "g.pt").read_bytes()
    (tmp_path / "g.pt").write_bytes(pt[:300])
    _raises(r"g\.pt: not a readable torch\.save file.*truncated", read_graph, tmp_path / "g.pt")
    _raises("carries no labels", read_graph, _edges_csv(tmp_path))
    _raises("unrecognised file type", read_graph, _write(tmp_path / "g.xlsx", "x"))
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        read_graph(tmp_path / "nope.csv", _table(tmp_path))


def test_validation_happens_before_features(tmp_path, monkeypatch):
    import graphtag.datasets.features as features

    called = []
    monkeypatch.setattr(features, "node_features", lambda *a, **k: called.append(1))
    lab = _write(tmp_path / "l.csv", "node,t\na,1\na,0\n")
    with pytest.raises(DataFormatError):
        load_file(_edges_csv(tmp_path), lab, log=False)
    assert not called


def test_no_warning_noise_for_pyg_both_directions(tmp_path):
    torch.save({"edge_index": torch.tensor([[0, 1], [1, 0]]), "y": torch.tensor([[0], [1]])},
               tmp_path / "g.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_graph(tmp_path / "g.pt").edges.tolist() == [[0], [1]]


def test_ogb_name_uses_the_folder_under_root_without_download(tmp_path):
    pytest.importorskip("ogb")
    _ogb_fixture(tmp_path)
    d = load_dataset("ogbn-proteins", root=tmp_path, features="degree", log=False)
    assert d.ogb_name == "ogbn-proteins" and d.y.shape == (8, 112)


def test_config_data_options_round_trip_and_leave_old_configs_unchanged():
    from graphtag.training.run import TrainConfig

    plain = TrainConfig().to_json()
    assert "labels" not in plain and "unknown_nodes" not in plain  # earlier run folders match
    cfg = TrainConfig(dataset="./e.csv", labels="l.csv", unknown_nodes="add")
    back = TrainConfig.from_json(cfg.to_json())
    assert back == cfg and back.data_kwargs()["labels"] == "l.csv"
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1 .*; unknown_nodes "
                                         r"must be one of \['error', 'drop', 'add'\]"):
        TrainConfig(unknown_nodes="keep", epochs=0)
