"""Checked, atomic downloads.

A file is streamed to ``<name>.part`` in the destination folder while its SHA-256 is computed,
verified, and only then renamed into place, so an interrupted or corrupted download never
leaves a file that a later run would trust.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["ChecksumError", "download_url", "sha256sum"]


class ChecksumError(RuntimeError):
    """A downloaded or provided file does not have the expected SHA-256."""


def sha256sum(path: str | os.PathLike, *, decompress: bool = False, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file (of its gunzipped content with ``decompress``)."""
    h = hashlib.sha256()
    opener = gzip.open if decompress else open
    with opener(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_url(
    url: str,
    folder: str | os.PathLike,
    filename: str | None = None,
    *,
    sha256: str | None = None,
    content_sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` into ``folder`` atomically, verifying its checksum.

    Parameters
    ----------
    url
        ``http(s)://`` or ``file://`` address.
    folder, filename
        Destination; ``filename`` defaults to the last path component of ``url``.
    sha256
        Expected SHA-256 of the bytes as downloaded.
    content_sha256
        Expected SHA-256 of the gunzipped content (for ``.gz`` files whose compressed bytes
        vary between mirrors while the text is fixed, as with SNAP's graphs).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    pathlib.Path
        The final path. An existing file is returned as is (not re-downloaded).

    Raises
    ------
    ChecksumError
        The file's digest differs; nothing is left at the destination.
    urllib.error.URLError
        Network failure; nothing is left at the destination.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    filename = filename or url.rstrip("/").rsplit("/", 1)[-1]
    dest = folder / filename
    if dest.exists():
        return dest
    part = folder / (filename + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {filename}",
                      disable=not progress, leave=False) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256.lower():
            raise ChecksumError(
                f"{url}: SHA-256 mismatch (expected {sha256}, got {digest}). The download is "
                "corrupt or the upstream file changed; retry, or place a verified copy at "
                f"{dest} yourself."
            )
        if content_sha256 is not None:
            got = sha256sum(part, decompress=filename.endswith(".gz"))
            if got != content_sha256.lower():
                raise ChecksumError(
                    f"{url}: SHA-256 of the content mismatch (expected {content_sha256}, got "
                    f"{got}). Retry, or place a verified copy at {dest} yourself."
                )
        os.replace(part, dest)
    finally:
        if part.exists():
            part.unlink()
    return dest


def copy_file(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dest`` atomically (through ``dest.part``)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, part)
    os.replace(part, dest)
    return dest
