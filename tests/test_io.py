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


def test_format_int_rows_matches_str_formatting():
    from graphtag.datasets.io import format_int_rows

    rng = np.random.default_rng(1)
    vals = np.concatenate([[0, 9, 10, 99, 100, 2**31, 2**32 - 1, 2**32, 2**40 + 7],
                           rng.integers(0, 10**12, 500)])
    seps = rng.choice(np.frombuffer(b"\t\n ", np.uint8), vals.size)
    want = "".join(f"{v}{chr(s)}" for v, s in zip(vals.tolist(), seps.tolist(), strict=True))
    assert format_int_rows(vals, seps).decode() == want
    small = np.array([[3, 14], [0, 7]])
    assert format_int_rows(small, b"\t\n") == b"3\t14\n0\t7\n"
    assert format_int_rows(np.array([], dtype=np.int64), b"\n") == b""
    with pytest.raises(ValueError, match="non-negative"):
        format_int_rows(np.array([1, -2]), b"\n")
    with pytest.raises(ValueError, match="does not divide"):
        format_int_rows(np.arange(3), b"\t\n")


def _messy_edge_file(path, rng, n_lines=3000):
    """Edges with duplicates, reversed duplicates, self-loops, comments and mixed separators."""
    e = rng.integers(0, 400, size=(n_lines, 2))
    lines = ["# header"]
    for i, (u, v) in enumerate(e.tolist()):
        lines.append(f"{u}{' ' if i % 3 == 0 else chr(9)}{v}")
        if i % 500 == 0:
            lines.append("# a comment in the middle")
    path.write_text("\n".join(lines) + "\n")
    return e


def test_edge_list_chunked_equals_unchunked_and_reference(tmp_path):
    e = _messy_edge_file(tmp_path / "g.txt", np.random.default_rng(0))
    with pytest.warns(UserWarning, match="self-loop"):
        whole = read_edge_list(tmp_path / "g.txt", chunk_size=1 << 22)
    for chunk in (1, 7, 1000):
        with pytest.warns(UserWarning, match="self-loop"):
            assert np.array_equal(read_edge_list(tmp_path / "g.txt", chunk_size=chunk), whole)
    lo, hi = e.min(1), e.max(1)
    ref = sorted({(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if a != b})
    assert whole.dtype == np.int64 and whole.T.tolist() == [list(p) for p in ref]
    raw = read_edge_list(tmp_path / "g.txt", dedupe=False, chunk_size=13)
    assert np.array_equal(raw, e.T)  # file order, nothing dropped


def test_edge_list_warning_counts_across_chunks(tmp_path):
    p = _write(tmp_path / "g.txt", "1\t2\n2\t1\n3\t3\n1\t2\n2\t4\n4\t4\n")
    with pytest.warns(UserWarning, match=r"2 self-loop\(s\) and 2 duplicate"):
        e = read_edge_list(p, chunk_size=2)
    assert e.tolist() == [[1, 2], [2, 4]]


@pytest.mark.parametrize(("text", "line", "why"),
                         [("1\t2\n3\t4\n5\t6\n7\t8\n-9\t1\n", 5, "negative"),
                          ("1\t2\n3\t4\n5\t6\n7\tq\n", 4, "not an integer"),
                          ("1\t2\n3\t4\n5\t6\n7\t8\t9\n", 4, "expected 2 node ids")])
def test_edge_list_error_in_a_later_chunk_names_the_line(tmp_path, text, line, why):
    p = _write(tmp_path / "bad.txt", text)
    with pytest.raises(DataFormatError, match=rf"bad\.txt, line {line}: .*{why}"):
        read_edge_list(p, chunk_size=2)


def test_large_ids_keep_int64(tmp_path):
    p = _write(tmp_path / "g.txt", f"{2**40}\t5\n7\t{2**33}\n5\t{2**40}\n")
    with pytest.warns(UserWarning, match="1 duplicate"):
        e = read_edge_list(p, chunk_size=1)
    assert e.tolist() == [[5, 7], [2**40, 2**33]]


def test_canonical_edges_matches_np_unique():
    from graphtag.datasets.io import canonical_edges

    rng = np.random.default_rng(3)
    e = rng.integers(0, 50, size=(2, 400))
    with pytest.warns(UserWarning, match="duplicate"):
        out = canonical_edges(e)
    keep = e[0] != e[1]
    ref = np.unique(np.sort(e[:, keep], axis=0), axis=1)
    assert np.array_equal(out, ref)


@pytest.mark.parametrize("case", ["dense", "sparse", "negative", "empty"])
def test_sorted_unique_matches_np_unique(case):
    from graphtag.datasets.io import sorted_unique

    rng = np.random.default_rng(4)
    a = {"dense": rng.integers(0, 100, 1000), "sparse": rng.integers(0, 10**12, 1000),
         "negative": rng.integers(-50, 50, (20, 30)), "empty": np.array([], np.int64)}[case]
    out = sorted_unique(a)
    assert out.dtype == a.dtype and np.array_equal(out, np.unique(a))


def test_communities_fast_parse_agrees_and_flags_overflow(tmp_path):
    rng = np.random.default_rng(5)
    comms = [rng.integers(0, 10**9, rng.integers(1, 300)) for _ in range(40)]
    text = "\n".join((" " if i % 2 else "\t").join(map(str, c.tolist()))
                     for i, c in enumerate(comms)) + "\n"
    back = read_communities(_write(tmp_path / "c.txt", text))
    assert [b.tolist() for b in back] == [sorted(set(c.tolist())) for c in comms]
    p = _write(tmp_path / "o.txt", "1\t2\n3\t99999999999999999999\n")
    with pytest.raises(DataFormatError, match=r"line 2: a node id is out of the int64 range"):
        read_communities(p)


def test_write_communities_chunks_and_empty_lines(tmp_path):
    comms = [np.array([3, 1]), np.array([], np.int64), np.array([10, 200, 5]), np.array([7])]
    write_communities(tmp_path / "c.txt", comms, chunk=2)
    assert (tmp_path / "c.txt").read_text() == "3\t1\n\n10\t200\t5\n7\n"
    write_communities(tmp_path / "c.txt.gz", comms, compresslevel=1)
    with gzip.open(tmp_path / "c.txt.gz", "rt") as f:
        assert f.read() == "3\t1\n\n10\t200\t5\n7\n"
    with pytest.raises(ValueError, match="compresslevel"):
        write_edge_list(tmp_path / "g.txt.gz", np.array([[0], [1]]), compresslevel=0)
