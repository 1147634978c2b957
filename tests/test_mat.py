import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from graphtag.datasets import DataFormatError, MultiLabelMat, read_mat_graph


def test_read_tiny_mat_removes_self_loops(tmp_path):
    net = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    group = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=float))
    scipy.io.savemat(tmp_path / "g.mat", {"network": net, "group": group})
    with pytest.warns(UserWarning, match=r"removed 1 self-loop"):
        edges, y = read_mat_graph(tmp_path / "g.mat")
    assert sorted(map(tuple, edges.T.tolist())) == [(0, 1), (1, 2)]
    assert y.tolist() == [[1, 0], [0, 1], [1, 1]]


def test_mat_missing_variable(tmp_path):
    scipy.io.savemat(tmp_path / "g.mat", {"adjacency": sp.eye(3)})
    with pytest.raises(DataFormatError, match="'network' missing"):
        read_mat_graph(tmp_path / "g.mat")


def test_mat_shape_mismatch(tmp_path):
    scipy.io.savemat(tmp_path / "g.mat", {"network": sp.eye(3), "group": sp.eye(4)})
    with pytest.raises(DataFormatError, match="square with as many rows"):
        read_mat_graph(tmp_path / "g.mat")


@pytest.mark.parametrize(("name", "fname", "nodes", "edges", "labels"), [
    ("blogcatalog", "blogcatalog/blogcatalog.mat", 10312, 333983, 39),
    ("ppi", "ppi-homo-sapiens/Homo_sapiens.mat", 3890, 37845, 50),
])
def test_real_mat_benchmarks(tmp_path, shared_data, name, fname, nodes, edges, labels):
    import shutil

    raw = tmp_path / name / "raw"
    raw.mkdir(parents=True)
    shutil.copy(shared_data / fname, raw)
    with pytest.warns(UserWarning) if name == "ppi" else _nullcontext():
        ds = MultiLabelMat(tmp_path, name, features="degree", log=False)
    d = ds[0]
    assert d.num_nodes == nodes and d.edge_index.size(1) == 2 * edges
    assert d.y.shape == (nodes, labels)
    top = MultiLabelMat(tmp_path, name, num_tasks=5, features="degree", log=False)[0]
    counts = d.y.sum(0)
    assert top.y.sum(0).tolist() == sorted(counts.tolist(), reverse=True)[:5]
    with pytest.raises(ValueError, match="num_tasks=99"):
        MultiLabelMat(tmp_path, name, num_tasks=99, features="degree", log=False)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
