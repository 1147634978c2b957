"""Models: message-passing multitask GNNs, SIGN, and task heads."""

from graphtag.models.factory import MODELS, build_model
from graphtag.models.gnn import CONVS, GNNEncoder, MultitaskGNN
from graphtag.models.heads import GroupedHeads, MultiLabelHead
from graphtag.models.sign import SIGN, sign_propagate

__all__ = [
    "CONVS",
    "MODELS",
    "SIGN",
    "GNNEncoder",
    "GroupedHeads",
    "MultiLabelHead",
    "MultitaskGNN",
    "build_model",
    "sign_propagate",
]
