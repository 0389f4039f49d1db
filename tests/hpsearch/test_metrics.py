"""hpsearch.metrics against small cases worked out by hand (the fractions in the comments)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hpsearch.metrics import evaluate, label_scores, roc_auc, scores

# Two classes, three of class 0 and one of class 1; predicted 0, 0, 1, 1.
TWO_PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.4, 0.6]])
TWO_LABELS = np.array([0, 0, 0, 1])

# Three classes, class 2 absent from the labels but predicted once; predicted 0, 1, 1, 2.
THREE_PROBS = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
THREE_LABELS = np.array([0, 0, 1, 1])


def test_two_classes_by_hand() -> None:
    found = scores(TWO_PROBS, TWO_LABELS)
    assert found["accuracy"] == pytest.approx(3 / 4)
    assert found["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)  # recalls 2/3 and 1
    # F1 of class 0: precision 1, recall 2/3 -> 0.8; of class 1: precision 1/2, recall 1 -> 2/3
    assert found["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    # the one positive (0.6) outranks two of the three negatives (0.1, 0.2) but not 0.9
    assert found["roc_auc"] == pytest.approx(2 / 3)


def test_the_per_class_table_and_the_confusion_matrix_by_hand() -> None:
    found = evaluate(TWO_PROBS, TWO_LABELS, ("cat", "dog"))
    assert [c.name for c in found.classes] == ["cat", "dog"]
    assert [c.precision for c in found.classes] == pytest.approx([1.0, 0.5])
    assert [c.recall for c in found.classes] == pytest.approx([2 / 3, 1.0])
    assert [c.f1 for c in found.classes] == pytest.approx([0.8, 2 / 3])
    assert [c.support for c in found.classes] == [3, 1]
    assert found.confusion == [[2, 1], [0, 1]]  # rows: the true class
    assert found.accuracy == pytest.approx(3 / 4)
    assert found.roc_auc == pytest.approx(2 / 3)


def test_a_class_absent_from_the_labels() -> None:
    # scikit-learn's multiclass ROC-AUC has no number for it (NaN; earlier versions raise);
    # ours averages the classes present
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theirs = roc_auc_score(THREE_LABELS, THREE_PROBS, multi_class="ovr", labels=[0, 1, 2])
        except ValueError:
            theirs = math.nan
    assert math.isnan(theirs)
    found = evaluate(THREE_PROBS, THREE_LABELS, ("a", "b", "c"))
    assert found.accuracy == pytest.approx(2 / 4)
    assert found.balanced_accuracy == pytest.approx((1 / 2 + 1 / 2) / 2)  # classes 0 and 1 only
    # F1: class 0 (P 1, R 1/2) 2/3; class 1 (P 1/2, R 1/2) 1/2; class 2, predicted but absent, 0
    assert found.macro_f1 == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    # class 0 ranks both positives first (1); class 1: 0.7 beats 0.2 and 0.6, 0.3 beats 0.2 only
    assert found.roc_auc == pytest.approx((1 + 3 / 4) / 2)
    absent = found.classes[2]
    assert (absent.precision, absent.recall, absent.f1, absent.support) == (0.0, 0.0, 0.0, 0)
    assert found.confusion == [[1, 1, 0], [0, 1, 1], [0, 0, 0]]


def test_a_class_neither_present_nor_predicted_does_not_count_in_macro_f1() -> None:
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    assert scores(probs, np.array([0, 1]))["macro_f1"] == 1.0


def test_one_class_only_has_no_roc_auc() -> None:
    labels = np.array([1, 1, 1])
    assert roc_auc(TWO_PROBS[:3], labels) is None
    found = evaluate(TWO_PROBS[:3], labels, ("cat", "dog"))
    assert found.roc_auc is None
    assert found.accuracy == pytest.approx(1 / 3)  # only the third is predicted 1
    assert found.balanced_accuracy == pytest.approx(1 / 3)


def test_with_every_class_present_roc_auc_is_scikit_learns_one_vs_rest() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=200)
    labels = rng.integers(0, 5, size=200)
    expected = roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    assert roc_auc(probs, labels) == pytest.approx(expected)


def test_label_scores_agree_with_scores() -> None:
    found = scores(THREE_PROBS, THREE_LABELS)
    assert label_scores(THREE_PROBS.argmax(1), THREE_LABELS) == {
        k: v for k, v in found.items() if k != "roc_auc"
    }
