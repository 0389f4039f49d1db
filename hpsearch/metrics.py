"""Classification metrics from predicted class probabilities, all by scikit-learn.

Two entry points: :func:`scores`, the four scalars every epoch reports, and :func:`evaluate`,
everything an evaluation keeps (the scalars, per-class precision/recall/F1/support and the
confusion matrix), for the test split of the final training. What needs only the predicted
classes is :func:`label_scores` (linear in the split, a few milliseconds); ROC-AUC needs the
probabilities and sorts the split once per class (:func:`roc_auc`: about 20 ms for 10,000
examples of 10 classes, 0.2 s for 100 classes, over a minute for 50,000 of 1,000 classes; so
training measures it every epoch only on smaller splits: ``EPOCH_ROC_AUC_LIMIT`` in
``hpsearch.training``; ``python bench/metrics.py``).

Small or skewed splits may lack a class. What each metric does then:

- **balanced accuracy**: the mean recall over the classes present in the labels (scikit-learn's
  definition);
- **macro-F1**: the mean F1 over the classes present in the labels or the predictions
  (scikit-learn's default), so a class predicted but absent counts as 0 and a class neither
  present nor predicted does not count;
- **ROC-AUC**: one-vs-rest, macro-averaged over the classes present in the labels (each needs
  positives and negatives; scikit-learn's multiclass ``roc_auc_score`` refuses a split that
  lacks a class), and **None** when the labels hold one class only: then it is undefined.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from hpsearch.results import ClassMetrics, SplitMetrics

OBJECTIVES = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc")
"""The metrics a search may maximise (``search.objective``), as :func:`scores` names them."""

Array = np.ndarray[Any, Any]


def scores(probs: Array, labels: Array) -> dict[str, float | None]:
    """The four scalars of class probabilities ``probs`` (N, C) against ``labels`` (N,):
    ``accuracy``, ``balanced_accuracy``, ``macro_f1`` and ``roc_auc`` (None when the labels hold
    one class only). See the module's docstring for classes absent from a split."""
    probs = np.asarray(probs)
    found: dict[str, float | None] = {**label_scores(probs.argmax(1), labels)}
    return found | {"roc_auc": roc_auc(probs, labels)}


def label_scores(predicted: Array, labels: Array) -> dict[str, float]:
    """What the predicted classes ``predicted`` (N,) alone give against ``labels`` (N,):
    ``accuracy``, ``balanced_accuracy`` and ``macro_f1``."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": _balanced_accuracy(labels, predicted),
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
    }


def roc_auc(probs: Array, labels: Array) -> float | None:
    """Macro one-vs-rest ROC-AUC of ``probs`` (N, C) over the classes present in ``labels``;
    None when fewer than two classes are present (every example is of one class)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    present = np.unique(labels)  # sorted
    if len(present) < 2:
        return None
    # one indicator column per present class: scikit-learn's multilabel path scores each
    # column one-vs-rest and averages them, which is its multiclass "ovr" without the demand
    # that every one of the C columns has a positive
    indicator = present[None, :] == labels[:, None]  # (N, P)
    return float(roc_auc_score(indicator, probs[:, present], average="macro"))


def evaluate(probs: Array, labels: Array, classes: Sequence[str]) -> SplitMetrics:
    """Everything an evaluation keeps: :func:`scores`, per-class metrics named by ``classes``
    (one per column of ``probs``, every class listed even when absent: support 0), and the
    confusion matrix (rows: the true class, columns: the predicted one)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    every = np.arange(len(classes))
    predicted = probs.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=every, zero_division=0
    )
    table = [
        ClassMetrics(
            name=name,
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            support=int(support[i]),
        )
        for i, name in enumerate(classes)
    ]
    matrix = confusion_matrix(labels, predicted, labels=every)  # (C, C)
    extra = {"classes": table, "confusion": matrix.tolist()}
    return SplitMetrics.model_validate(scores(probs, labels) | extra)


def _balanced_accuracy(labels: Array, predicted: Array) -> float:
    # adjusted=False and no sample weights: the mean recall over the classes in ``labels``;
    # scikit-learn warns when a prediction names a class absent from them, which a small
    # split often does and which the definition handles
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(labels, predicted))
