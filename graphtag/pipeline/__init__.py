"""The whole Grad-TAG job: :class:`GradTAG` (estimator) and :func:`run_pipeline` (run folder
with resumable stages, the engine of ``graphtag run``)."""

from graphtag.pipeline.config import METHODS, RunConfig
from graphtag.pipeline.gradtag import GradTAG
from graphtag.pipeline.run import load_base_model, run_pipeline

__all__ = ["METHODS", "GradTAG", "RunConfig", "load_base_model", "run_pipeline"]
