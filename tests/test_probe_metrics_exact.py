"""The probe's metrics are scikit-learn's to the last bit: mvcl.probe.metrics re-does sklearn's binary ROC-AUC,
average precision, precision-recall curve and F1 on arrays (a probe job then imports neither scikit-learn nor
scipy.stats), and Table 2's records must not change by a single bit. Each case compares with `==`, never
approximately, on scores with and without ties, as a probe produces them (float32 probabilities in float64)."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score

from mvcl.probe import metrics
from mvcl.probe.metrics import f1_thresholds, genre_metrics, tagging_metrics


def _cases():
    rng = np.random.default_rng(7)
    for case in range(300):
        n = int(rng.integers(2, 120))
        truth = rng.random(n) < rng.uniform(0.05, 0.95)
        truth[rng.integers(n)], truth[rng.integers(n)] = True, False  # both classes, whatever the draw
        if truth.all() or not truth.any():
            continue
        scores = rng.random(n).astype(np.float32).astype(np.float64)
        if case % 3 == 1:  # heavy ties: a few distinct scores
            scores = np.round(scores * 4) / 4
        elif case % 3 == 2:  # saturated sigmoids/softmaxes: many exact 0s and 1s among fine values
            scores = np.where(rng.random(n) < 0.3, rng.integers(0, 2, n).astype(np.float64), scores)
        yield truth, scores


CASES = list(_cases())


def test_binary_metrics_equal_sklearn_bit_for_bit():
    assert len(CASES) > 250
    for truth, scores in CASES:
        assert metrics._binary_roc_auc(truth, scores) == roc_auc_score(truth, scores)
        assert metrics._binary_roc_auc(truth.astype(np.float32), scores) == roc_auc_score(truth, scores)
        assert metrics._binary_average_precision(truth, scores) == average_precision_score(truth, scores)
        for mine, theirs in zip(
            metrics._precision_recall_curve(truth, scores), precision_recall_curve(truth, scores), strict=True
        ):
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
        predicted = scores >= 0.5
        assert metrics._binary_f1(truth, predicted) == f1_score(truth, predicted, zero_division=0.0)
        assert metrics._binary_f1(truth, np.zeros_like(truth)) == f1_score(
            truth, np.zeros_like(truth), zero_division=0.0
        )


def _reference_genre(y_true, proba, present):
    """What genre_metrics computed with scikit-learn before (its macro F1 and one-vs-rest AUC)."""
    predicted = proba.argmax(axis=1)
    f1 = f1_score(y_true, predicted, labels=present, average=None, zero_division=0.0)
    auc = [roc_auc_score(y_true == c, proba[:, c]) for c in present]
    return float(np.mean(f1)), float(np.mean(auc)), [float(v) for v in f1], [float(v) for v in auc]


def test_genre_and_tagging_metrics_equal_sklearn_bit_for_bit():
    rng = np.random.default_rng(3)
    for _ in range(40):
        n, k = int(rng.integers(8, 60)), int(rng.integers(2, 7))
        y_true = rng.integers(0, k, n)
        logits = rng.normal(size=(n, k)) * rng.uniform(0.5, 30)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32).astype(float)
        names = [f"c{c}" for c in range(k)]
        result = genre_metrics(y_true, proba, names)
        present = np.unique(y_true)
        if len(present) < 2:
            continue
        f1, auc, per_f1, per_auc = _reference_genre(y_true, proba, present)
        assert result["f1"] == f1 and result["roc_auc"] == auc
        assert [result["per_label"][names[c]]["f1"] for c in present] == per_f1
        assert [result["per_label"][names[c]]["roc_auc"] for c in present] == per_auc

        tags = (rng.random((n, k)) < 0.4).astype(np.float32)
        scores = rng.random((n, k)).astype(np.float32).astype(float)
        scores[:, 0] = np.round(scores[:, 0] * 3) / 3  # ties
        thresholds, _ = f1_thresholds(tags, scores, names)
        result = tagging_metrics(tags, scores, thresholds, names)
        for j, name in enumerate(names):
            if name in result["excluded"]:
                continue
            expected = {
                "roc_auc": float(roc_auc_score(tags[:, j], scores[:, j])),
                "pr_auc": float(average_precision_score(tags[:, j], scores[:, j])),
                "f1": float(f1_score(tags[:, j], scores[:, j] >= thresholds[j], zero_division=0.0)),
            }
            assert {key: result["per_label"][name][key] for key in expected} == expected
            if tags[:, j].any():  # the threshold: argmax of F1 over sklearn's precision-recall curve
                precision, recall, candidates = precision_recall_curve(tags[:, j], scores[:, j])
                precision, recall = precision[:-1], recall[:-1]
                f = 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1.0)
                assert thresholds[j] == candidates[np.argmax(f)]


@pytest.mark.parametrize("module", ["mvcl.probe.metrics", "mvcl.probe.train", "mvcl.probe.replicates"])
def test_probe_modules_import_neither_sklearn_nor_scipy_stats(module):
    """A probe job's start-up: these imports cost ~1.2 CPU-s and the probe does not need them."""
    code = f"import sys, {module}; print(sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_probe_section_is_resolved_from_the_schema_parsed_once_and_never_shared():
    """resolve_probe_section parses the schema once per process (libyaml): the same defaults as the schema's,
    refusals as before, and a caller changing its settings changes nobody else's."""
    from mvcl.configuration import load_schema, schema_defaults
    from mvcl.probe.train import resolve_probe_section

    schema = load_schema()["properties"]["probe"]
    expected = schema_defaults(schema["properties"])
    first = resolve_probe_section({})
    assert first == expected
    first["hidden"].append(7)
    first["repeats"] = 99
    assert resolve_probe_section({}) == expected
    assert resolve_probe_section({"hidden": [4], "lr": 0.5})["hidden"] == [4]
    with pytest.raises(ValueError, match="probe"):
        resolve_probe_section({"no_such_key": 1})
