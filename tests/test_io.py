import gzip

import numpy as np
import pytest

from graphtag.datasets import DataFormatError, read_communities, read_edge_list
from graphtag.datasets.io import write_communities, write_edge_list


def _write(path, text):
    path.write_text(text)
    return path


def test_edge_list_parses_comments_tabs_and_spaces(tmp_path):
    p = _write(tmp_path / "g.txt", "# header\n# FromNodeId\tToNodeId\n1\t2\n2 3\n\n5\t1\n")
    e = read_edge_list(p)
    assert e.dtype == np.int64
    assert sorted(map(tuple, e.T.tolist())) == [(1, 2), (1, 5), (2, 3)]


def test_edge_list_gzip(tmp_path):
    p = tmp_path / "g.txt.gz"
    with gzip.open(p, "wt") as f:
        f.write("# c\n0\t1\n1\t2\n")
    assert read_edge_list(p).shape == (2, 2)


def test_edge_list_removes_self_loops_and_duplicates_with_warning(tmp_path):
    p = _write(tmp_path / "g.txt", "1\t2\n2\t1\n3\t3\n1\t2\n2\t4\n")
    with pytest.warns(UserWarning, match=r"1 self-loop\(s\) and 2 duplicate"):
        e = read_edge_list(p)
    assert sorted(map(tuple, e.T.tolist())) == [(1, 2), (2, 4)]


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("1\t2\n3\t4\t5\n", 2, "expected 2 node ids"),
        ("# x\n1\t2\n3\tabc\n", 3, "not an integer"),
        ("1\t2\n-3\t4\n", 2, "negative"),
    ],
)
def test_edge_list_malformed_line_names_file_and_line(tmp_path, text, line, why):
    p = _write(tmp_path / "bad.txt", text)
    with pytest.raises(DataFormatError, match=rf"bad\.txt, line {line}: .*{why}"):
        read_edge_list(p)


def test_edge_list_empty_file(tmp_path):
    p = _write(tmp_path / "e.txt", "# only a comment\n")
    with pytest.raises(DataFormatError, match="no edges"):
        read_edge_list(p)


def test_edge_list_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        read_edge_list(tmp_path / "nope.txt")


def test_communities_parse_and_merge_repeated_ids(tmp_path):
    p = _write(tmp_path / "c.txt", "3\t1\t2\n5 4\n1\t1\t2\n")
    c = read_communities(p)
    assert [x.tolist() for x in c] == [[1, 2, 3], [4, 5], [1, 2]]


def test_communities_empty_line_warns(tmp_path):
    p = _write(tmp_path / "c.txt", "1\t2\n\n3\t4\n")
    with pytest.warns(UserWarning, match=r"skipped 1 empty line\(s\) \(first at line 2\)"):
        c = read_communities(p)
    assert len(c) == 2


def test_communities_bad_token_names_line(tmp_path):
    p = _write(tmp_path / "c.txt", "1\t2\n3\tx7\n")
    with pytest.raises(DataFormatError, match=r"c\.txt, line 2: 'x7'"):
        read_communities(p)


def test_communities_empty_file(tmp_path):
    p = _write(tmp_path / "c.txt", "")
    with pytest.raises(DataFormatError, match="no communities"):
        read_communities(p)


def test_write_read_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    e = np.unique(np.sort(rng.integers(0, 50, size=(200, 2)), axis=1), axis=0)
    e = e[e[:, 0] != e[:, 1]].T
    write_edge_list(tmp_path / "g.txt.gz", e, header=("test",))
    assert np.array_equal(read_edge_list(tmp_path / "g.txt.gz"), e)
    comms = [np.array([1, 5, 9]), np.array([2, 3])]
    write_communities(tmp_path / "c.txt.gz", comms)
    back = read_communities(tmp_path / "c.txt.gz")
    assert [x.tolist() for x in back] == [[1, 5, 9], [2, 3]]
    assert not list(tmp_path.glob("*.tmp"))
