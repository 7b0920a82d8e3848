"""The digit evaluator: precision and recall, ink centroids, pairwise distances, the shipped classifier."""
from __future__ import annotations

import pytest
import torch

import began_lite as bl
from began_lite.evaluate import centroids, mean_pairwise_l1, precision_recall


def _clusters(n, centres, spread, g):
    labels = torch.randint(len(centres), (n,), generator=g)
    return centres[labels] + spread * torch.randn(n, centres.shape[1], generator=g), labels


def test_precision_recall_known_answers():
    """Identical sets: 1 and 1. Far apart: 0 and 0. Half the clusters, drawn well: precision near 1,
    recall near 1/2 (each cluster far from the others, so no ball reaches across)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 4, generator=g) * 50
    real, _ = _clusters(2000, centres, 1.0, g)
    assert precision_recall(real, real) == (1.0, 1.0)
    assert precision_recall(real, real + 1e3) == (0.0, 0.0)
    fake, labels = _clusters(4000, centres, 1.0, g)
    half = fake[labels < 5][:1000]
    p, r = precision_recall(real, half)
    assert p > 0.9 and 0.4 < r < 0.6, (p, r)
    # the same manifold's k-th neighbour balls, by brute force, on a small case
    a, b = torch.randn(30, 2, generator=g), torch.randn(20, 2, generator=g) + 0.5
    k = 3
    ra = torch.tensor([sorted(((a - x).norm(dim=1)).tolist())[k] for x in a])
    rb = torch.tensor([sorted(((b - x).norm(dim=1)).tolist())[k] for x in b])
    prec = sum(any((y - a[i]).norm() <= ra[i] for i in range(len(a))) for y in b) / len(b)
    rec = sum(any((x - b[j]).norm() <= rb[j] for j in range(len(b))) for x in a) / len(a)
    assert precision_recall(a, b, k=k) == (pytest.approx(float(prec)), pytest.approx(float(rec)))


@pytest.mark.parametrize("args, pattern", [
    ((torch.zeros(5, 2), torch.zeros(5, 3)), r"^real_features and fake_features must be \(n, d\)"),
    ((torch.zeros(5, 2), torch.zeros(5, 2), 5), r"^k must be an integer in \[1, 4\]"),
    ((torch.full((5, 2), float("nan")), torch.zeros(5, 2)), r"must be finite"),
])
def test_precision_recall_bad_input(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        precision_recall(*args)


def test_centroids_against_a_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 1, 6, 7, generator=g) * 2 - 1
    got = centroids(x)
    for i in range(5):
        w = (x[i, 0] + 1) / 2
        rows = sum(r * w[r, c] for r in range(6) for c in range(7)) / w.sum()
        cols = sum(c * w[r, c] for r in range(6) for c in range(7)) / w.sum()
        assert got[i].tolist() == pytest.approx([float(rows), float(cols)], rel=1e-5)
    one = torch.full((1, 1, 8, 8), -1.0)
    one[0, 0, 2, 5] = 1.0  # a single lit pixel sits where it is
    assert centroids(one).tolist() == [[2.0, 5.0]]


def test_mean_pairwise_l1_against_a_double_loop():
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0)).double()
    pairs = [(x[i] - x[j]).abs().mean().item() for i in range(6) for j in range(6) if i != j]
    assert mean_pairwise_l1(x) == pytest.approx(sum(pairs) / len(pairs), rel=1e-9)


def test_real_digits_score_as_real():
    """Two halves of the real digits: ten classes, small Frechet distance, precision and recall high."""
    x = bl.load_digits(16)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    from began_lite.evaluate import evaluate_digits

    report = evaluate_digits(x[perm[:900]], real=x[perm[900:]])
    assert report["classes_covered"] == 10 and report["frechet"] < 5
    assert report["precision"] > 0.8 and report["recall"] > 0.8
    blank = evaluate_digits(torch.full((50, 1, 16, 16), -1.0) + 0.01 * torch.rand(50, 1, 16, 16))
    assert blank["precision"] < 0.1 and blank["recall"] < 0.1 and blank["frechet"] > 100


def test_shipped_classifier_accuracy_is_what_it_claims():
    """data/digit_classifier.pt: its recorded held-out accuracy, recomputed here on the same seeded split."""
    from began_lite.checkpoint import load_checkpoint
    from began_lite.data import load_digits
    from began_lite.classifier import CLASSIFIER_PATH, load_digit_classifier

    record = load_checkpoint(CLASSIFIER_PATH)
    # made by `python -m began_lite.classifier` (then named began_lite.metrics); remaking it on another
    # CPU changes its last bits and so every stored score's, so the shipped file is kept as made
    assert record["seed"] == 0
    model, acc = load_digit_classifier()
    x, y = load_digits(8, return_labels=True)
    held_out = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:500]
    with torch.no_grad():
        measured = (model(x[held_out]).argmax(1) == y[held_out]).double().mean().item()
    assert measured == pytest.approx(acc, abs=1e-6)
    assert measured > 0.95
