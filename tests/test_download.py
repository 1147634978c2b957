"""Downloads against a loopback HTTP server (no internet)."""

import functools
import gzip
import hashlib
import http.server
import shutil
import threading

import pytest
import torch

from graphtag.datasets import ChecksumError, SNAPCommunities, download_url, sha256sum
from graphtag.datasets import snap as snap_module


@pytest.fixture()
def serve(tmp_path):
    """Serve a folder on 127.0.0.1; yields (folder, base_url)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_verifies_checksum(serve, tmp_path):
    folder, url = serve
    (folder / "f.txt").write_bytes(b"hello graph\n" * 1000)
    digest = hashlib.sha256(b"hello graph\n" * 1000).hexdigest()
    out = download_url(url + "f.txt", tmp_path / "dl", sha256=digest, progress=False)
    assert out.read_bytes() == b"hello graph\n" * 1000
    assert sha256sum(out) == digest


def test_checksum_mismatch_fails_cleanly(serve, tmp_path):
    folder, url = serve
    (folder / "f.txt").write_bytes(b"tampered")
    dest = tmp_path / "dl"
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        download_url(url + "f.txt", dest, sha256="0" * 64, progress=False)
    assert list(dest.iterdir()) == []  # neither the file nor a .part is left


def test_content_checksum_of_gzip(serve, tmp_path):
    folder, url = serve
    with gzip.open(folder / "g.txt.gz", "wb") as f:
        f.write(b"1\t2\n")
    good = hashlib.sha256(b"1\t2\n").hexdigest()
    out = download_url(url + "g.txt.gz", tmp_path / "a", content_sha256=good, progress=False)
    assert out.exists()
    with pytest.raises(ChecksumError, match="content"):
        download_url(url + "g.txt.gz", tmp_path / "b", content_sha256="1" * 64, progress=False)
    assert not (tmp_path / "b" / "g.txt.gz").exists()


def test_missing_url_leaves_nothing(serve, tmp_path):
    _, url = serve
    with pytest.raises(OSError):
        download_url(url + "absent.txt", tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_snap_dataset_downloads_real_amazon_from_loopback(serve, tmp_path, shared_data,
                                                          monkeypatch):
    """SNAPCommunities fetches SNAP's file names, checks content hashes, then processes."""
    folder, url = serve
    src = shared_data / "snap-com-amazon"
    shutil.copy(src / "com-amazon.ungraph.txt.gz", folder)
    with open(src / "com-amazon.top5000.cmty.txt", "rb") as f_in, \
            gzip.open(folder / "com-amazon.top5000.cmty.txt.gz", "wb") as f_out:
        shutil.copyfileobj(f_in, f_out)
    monkeypatch.setattr(snap_module, "_SNAP_URL", url)
    with pytest.warns(UserWarning, match="duplicate"):
        ds = SNAPCommunities(tmp_path / "data", "amazon", num_tasks=100, features="degree",
                             log=False)
    d = ds[0]
    # Figures from shared/data's README: top-100 distinct communities, induced subgraph.
    assert d.num_nodes == 4336
    assert d.edge_index.size(1) == 2 * 14100
    assert d.y.shape == (4336, 100)
    sizes = d.y.sum(0)
    assert int(sizes.min()) == 47 and int(sizes.max()) == 328
    assert torch.all(sizes[:-1] >= sizes[1:])  # ranked by size


def test_snap_dataset_uses_files_on_disk_and_rejects_unknown(tmp_path):
    raw = tmp_path / "mine" / "raw"
    raw.mkdir(parents=True)
    (raw / "com-mine.ungraph.txt").write_text("0\t1\n1\t2\n2\t3\n3\t0\n")
    (raw / "com-mine.top5000.cmty.txt").write_text("0\t1\t2\n2\t3\n")
    ds = SNAPCommunities(tmp_path, "mine", num_tasks=2, features="random", num_features=4,
                         split=(0.5, 0.25, 0.25), log=False)
    assert ds[0].y.shape == (4, 2)
    # Another community file in the same folder is processed on its own, not served from cache.
    (raw / "com-mine.all.cmty.txt").write_text("0\t1\t2\n2\t3\n0\t3\n")
    all_ds = SNAPCommunities(tmp_path, "mine", num_tasks=3, communities="all",
                             features="random", num_features=4, split=(0.5, 0.25, 0.25),
                             log=False)
    assert all_ds[0].y.shape == (4, 3)
    with pytest.raises(FileNotFoundError, match="no download source"):
        SNAPCommunities(tmp_path, "unknown-graph", log=False)
