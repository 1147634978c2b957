"""Build a model by name (used by the CLI and the pipeline)."""

from __future__ import annotations

from torch import nn

from graphtag.models.gnn import CONVS, MultitaskGNN
from graphtag.models.sign import SIGN

__all__ = ["MODELS", "build_model"]

MODELS = (*CONVS, "sign")


def build_model(
    name: str,
    in_channels: int,
    num_tasks: int,
    *,
    hidden_channels: int = 128,
    num_layers: int = 2,
    dropout: float = 0.5,
    head: nn.Module | None = None,
) -> nn.Module:
    """``"sage"``, ``"gcn"``, ``"gin"`` (:class:`MultitaskGNN`) or ``"sign"`` (:class:`SIGN`,
    with ``num_layers`` propagation hops)."""
    if name in CONVS:
        return MultitaskGNN(in_channels, hidden_channels, num_tasks, num_layers, name, dropout,
                            head=head)
    if name == "sign":
        return SIGN(in_channels, hidden_channels, num_tasks, num_layers, dropout, head=head)
    raise ValueError(f"model={name!r} is not one of {MODELS}.")
