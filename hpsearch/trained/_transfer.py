"""Transfer learning (seed 001's table): a model starts from a trained model's weights.

``model.init_from`` names an hpsearch model file (``hpsearch model download``; for an ensemble,
its first member, the best configuration). Every layer but the head must be in the file with the
same shape: the file's model section is this spec's model section. The head (the model's last
linear layer) is kept when the classes are the same, and is the model's own new one when they
differ.

What is trained follows the table: with very little data, a linear classifier on top (``freeze:
features``: only the head learns, and the frozen layers' batch-norm statistics stay those of the
source data); with more, fine-tuning (``freeze: none``). ``transfer: auto`` chooses by the
training set's size (:data:`TRANSFER_LINEAR_BELOW` images per class) and says which it chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from hpsearch.catalog import DatasetInfo
from hpsearch.data import resolve_path
from hpsearch.errors import HPSearchError, ModelFileError
from hpsearch.spec import STUDY_PREFIX, ModelSpec
from hpsearch.trained._file import read_model_file

TRANSFER_LINEAR_BELOW = 100
"""Training images per class below which ``transfer: auto`` trains a linear classifier on top
of the frozen features ("very little data"), and at or above which it fine-tunes every layer."""


class TransferError(HPSearchError):
    """A model to start from that cannot be used: unreadable, or of another architecture."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"model.init_from: {problem}")


@dataclass
class Transfer:
    """What a model took from the one it started from."""

    source: str  # the file's study and kind, in words
    freeze: str  # none | features
    new_head: bool  # the classes differ: the head is the model's own, untrained
    why: str  # how freeze was chosen, in words
    frozen: list[nn.Module] = field(default_factory=list, repr=False)  # kept in eval mode

    def describe(self) -> str:
        head = "a new head" if self.new_head else "its head"
        how = "a linear classifier on top" if self.freeze == "features" else "fine-tuned"
        return f"started from {self.source} ({head}), {how}: {self.why}"

    def hold(self) -> None:
        """Keep the frozen layers in eval mode (their batch-norm statistics unchanged): call
        after every ``model.train()``."""
        for module in self.frozen:
            module.eval()


def chosen_freeze(spec: ModelSpec, train_images: int, classes: int) -> tuple[str, str]:
    """``(freeze, why)``: the spec's, or the one ``transfer: auto`` chooses by the data's size."""
    if spec.transfer != "auto":
        return spec.freeze, f"model.freeze: {spec.freeze}"
    per_class = train_images / classes
    if per_class < TRANSFER_LINEAR_BELOW:
        return "features", (
            f"model.transfer: auto, {per_class:.0f} training images per class "
            f"(fewer than {TRANSFER_LINEAR_BELOW})"
        )
    return "none", (
        f"model.transfer: auto, {per_class:.0f} training images per class "
        f"(at least {TRANSFER_LINEAR_BELOW})"
    )


def init_path(init_from: str) -> Path:
    """The file ``model.init_from`` names on this machine (an upload: in the dataset cache)."""
    if init_from.startswith(STUDY_PREFIX):
        raise TransferError(
            f"{init_from!r} names a study: it is resolved to its model file when the study is "
            "launched (hpsearch run, hpsearch launch), not here"
        )
    return resolve_path(init_from)


def start_from(model: nn.Module, spec: ModelSpec, info: DatasetInfo, train_images: int) -> Transfer:
    """Load the weights ``spec.init_from`` names into ``model`` (built from ``spec`` for
    ``info``) and freeze what ``spec`` asks to; :class:`TransferError` saying what does not fit."""
    assert spec.init_from is not None
    try:
        card, weights = read_model_file(init_path(spec.init_from))
    except ModelFileError as exc:
        raise TransferError(str(exc)) from None
    if card.channels != info.channels:
        raise TransferError(
            f"the model in it takes {card.channels}-channel images; {info.name} has {info.channels}"
        )
    head_name = _head_name(model)
    own = model.state_dict()
    source = weights[0]
    is_head = {k: k.startswith(f"{head_name}.") for k in own}
    for key, tensor in own.items():
        if is_head[key]:
            continue
        if key not in source or source[key].shape != tensor.shape:
            found = "missing" if key not in source else f"of shape {tuple(source[key].shape)}"
            raise TransferError(
                f"its layer {key} is {found}, not {tuple(tensor.shape)} as here: the model "
                f"section must be the one it was trained with ({_arch(card.model)})"
            )
    new_head = list(card.classes) != list(info.classes) or any(
        key not in source or source[key].shape != own[key].shape for key in own if is_head[key]
    )
    model.load_state_dict(
        {k: v if (is_head[k] and new_head) else source[k] for k, v in own.items()}
    )
    freeze, why = chosen_freeze(spec, train_images, info.num_classes)
    transfer = Transfer(f"the {card.kind} model of study {card.study}", freeze, new_head, why)
    if freeze == "features":
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith(f"{head_name}."))
        transfer.frozen = [  # the layers with running statistics
            m
            for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._NormBase)
            and not name.startswith(f"{head_name}.")
        ]
    return transfer


def _head_name(model: nn.Module) -> str:
    """The qualified name of the model's head: its last linear layer."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise TransferError("the model has no linear layer to serve as its head")
    return str(linear[-1])


def _arch(model: dict[str, object]) -> str:
    shown = {k: v for k, v in model.items() if k not in ("init_from", "freeze", "transfer")}
    return ", ".join(f"{k}: {v}" for k, v in shown.items())
