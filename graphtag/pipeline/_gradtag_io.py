"""On-disk persistence of a :class:`~graphtag.pipeline.GradTAG` estimate: the fitted
attributes (:meth:`save_fitted`, :meth:`load_fitted`) and the resumable, rank-shared fit
blocks of :meth:`~graphtag.pipeline.GradTAG.estimate` with the fingerprint that guards them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from graphtag.distributed import (
    all_gather_object,
    barrier,
    get_rank,
    get_world_size,
    is_main,
    shard,
)
from graphtag.gradients.store import GradientStore

if TYPE_CHECKING:
    from graphtag.pipeline.gradtag import GradTAG

#: Files of :meth:`GradTAG.save_fitted`: fitted attribute -> file in the folder.
_FITTED_FILES = {"subsets_": "subsets.npy", "coef_": "coef.npy", "scores_": "scores.npy",
                 "base_scores_": "base_scores.npy", "affinity_": "affinity.npy",
                 "affinity_se_": "affinity_se.npy", "coverage_": "coverage.json"}


class _PersistenceMixin:
    """:class:`~graphtag.pipeline.GradTAG`'s methods that read and write its folders."""

    def _check_fit_dir(self, ck: Path, store: GradientStore) -> None:
        """Saved fit blocks are reused only for the same subsets, settings and gradients;
        blocks from other settings are removed so they cannot be picked up by mistake."""
        import hashlib
        import json

        key = hashlib.sha256(json.dumps({
            "subsets": self.subsets_.tolist(), "lam": self.lam, "offset": self.offset,
            "fit": [self.fit_method, self.fit_refine if self.fit_method == "stats" else None],
            "store": {k: store.manifest.get(k) for k in (
                "model_sha256", "nodes_sha256", "projector", "dim", "seed")},
        }, sort_keys=True, default=str).encode()).hexdigest()
        f = ck / "fits.json"
        if f.exists() and json.loads(f.read_text()).get("key") != key:
            for old in ck.glob("coef_*.npy"):
                old.unlink()
        if not f.exists() or json.loads(f.read_text()).get("key") != key:
            f.write_text(json.dumps({"key": key}))

    def _fit_blocks(self, fit_block: Callable[[int, int], Tensor], fit_store: GradientStore,
                    ck: Path | None, block: int) -> Tensor:
        """The coefficients of all of :attr:`subsets_`, fitted ``block`` at a time by
        ``fit_block(lo, hi)`` (:meth:`~graphtag.pipeline.GradTAG.estimate`); with ``ck``,
        finished blocks are saved there and reused, and under a process group the blocks are
        shared out over the ranks."""
        if ck is not None:
            ck.mkdir(parents=True, exist_ok=True)
            if is_main():
                self._check_fit_dir(ck, fit_store)
            barrier()
        m = self.subsets_.shape[0]
        bounds = [(lo, min(lo + block, m)) for lo in range(0, m, block)]
        rank, world = get_rank(), get_world_size()

        def ck_file(lo: int, hi: int) -> Path | None:
            return ck / f"coef_{lo:07d}_{hi:07d}.npy" if ck is not None else None

        # Subsets are fitted independently, so any split of the blocks over ranks gives the
        # single-process result: rank r fits blocks b with b % world == r.
        mine = shard(range(len(bounds)), rank, world)
        fitted: dict[int, Tensor] = {}
        bar = tqdm(total=sum(bounds[b][1] - bounds[b][0] for b in mine), unit="subset",
                   desc="subset fits" if world == 1 else f"subset fits (rank 0 of {world})",
                   disable=not (self.progress and is_main()))
        for b in mine:
            lo, hi = bounds[b]
            f = ck_file(lo, hi)
            if f is not None and f.exists():
                z = torch.from_numpy(np.load(f))
            else:
                z = fit_block(lo, hi)
            if f is not None and not f.exists():
                tmp = f.with_name(f.stem + ".tmp.npy")
                np.save(tmp, z.numpy())
                os.replace(tmp, f)
            fitted[b] = z
            bar.update(hi - lo)
        bar.close()
        if world > 1:
            if ck is not None:  # every block is in the shared folder once all ranks are here
                barrier()
                fitted = {b: torch.from_numpy(np.load(ck_file(*bounds[b])))
                          for b in range(len(bounds))}
            else:  # no shared folder: exchange the blocks themselves
                fitted = {b: z for part in all_gather_object(fitted) for b, z in part.items()}
        parts = [fitted[b] for b in range(len(bounds))]
        return torch.cat(parts)

    # ------------------------------------------------------------ persistence
    def save_fitted(self, folder: str | os.PathLike) -> None:
        """Write the fitted estimate (subsets, coefficients, scores, affinity, its standard
        errors and the coverage) into ``folder``, for :meth:`load_fitted`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for attr, fname in _FITTED_FILES.items():
            value = getattr(self, attr)
            tmp = folder / f"{fname}.tmp"
            if fname.endswith(".json"):
                tmp.write_text(json.dumps(value, indent=1))
            else:
                with open(tmp, "wb") as fh:
                    np.save(fh, value.numpy() if torch.is_tensor(value) else np.asarray(value))
            os.replace(tmp, folder / fname)

    def load_fitted(self, folder: str | os.PathLike) -> GradTAG:
        """Set the fitted attributes from a folder written by :meth:`save_fitted` (the
        ``affinity/`` stage of a ``graphtag run``); returns ``self``, ready for :meth:`group`.

        ``affinity.npy`` must be there; the other files are read when present (run folders
        of earlier versions lack some).
        """
        folder = Path(folder)
        if not (folder / "affinity.npy").exists():
            raise FileNotFoundError(f"{folder / 'affinity.npy'}: no fitted Grad-TAG estimate "
                                    "here (GradTAG.save_fitted writes one).")
        for attr, fname in _FITTED_FILES.items():
            f = folder / fname
            if not f.exists():
                continue
            if fname.endswith(".json"):
                value: Any = json.loads(f.read_text())
            else:
                value = np.load(f)
                if attr in ("coef_", "scores_"):
                    value = torch.from_numpy(value)
            setattr(self, attr, value)
        return self
