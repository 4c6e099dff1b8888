"""Metric values against independent implementations (torchmetrics, prdc) on real features, plus invariants."""

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from synthaug.metrics import FID, KID, DensityCoverage, PrecisionRecall
from synthaug.metrics.functional import (
    density_coverage,
    fid,
    kid,
    knn_radii,
    memorization_ratios,
    near_copy_share,
    precision_recall,
)
from synthaug.metrics.functional import prdc as prdc_ours

RTOL = 1e-4


@pytest.fixture(scope="module")
def sets(digits, digits_bank):
    """Real features: digit pixels (64-d) for 500 real test images and the 400 bank samples, plus a little seeded
    jitter: identical uint8 images sit at exactly tied k-NN distances, where balls with and without their
    boundary (ours: <=, prdc: <) legitimately differ."""
    rng = torch.Generator().manual_seed(0)
    real = digits.images[:500].flatten(1).double() / 255
    fake = digits_bank.images(range(len(digits_bank))).flatten(1).double() / 255
    return real + 1e-6 * torch.rand(real.shape, generator=rng, dtype=torch.float64), fake + 1e-6 * torch.rand(
        fake.shape, generator=rng, dtype=torch.float64
    )


class Identity(nn.Module):
    """Lets torchmetrics' image metrics take features directly."""

    num_features = 64

    def forward(self, x):
        return x


def test_fid_matches_torchmetrics(sets):
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = sets
    reference = FrechetInceptionDistance(feature=Identity(), normalize=True)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    assert float(fid(real, fake)) == pytest.approx(float(reference.compute()), rel=RTOL)


def test_kid_matches_torchmetrics(sets):
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = sets[0][:400], sets[1]
    # One subset of the whole (equal-size) sets, so both see the same samples whatever their RNG.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = KernelInceptionDistance(feature=Identity(), subsets=1, subset_size=400, normalize=True)
        reference.update(real, real=True)
        reference.update(fake, real=False)
        expected = float(reference.compute()[0])
    assert float(kid(real, fake, subsets=1, subset_size=400)[0]) == pytest.approx(expected, rel=RTOL)


def test_prdc_matches_the_reference(sets):
    prdc = pytest.importorskip("prdc")
    real, fake = sets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k3 = prdc.compute_prdc(real_features=real.numpy(), fake_features=fake.numpy(), nearest_k=3)
        k5 = prdc.compute_prdc(real_features=real.numpy(), fake_features=fake.numpy(), nearest_k=5)
    precision, recall = precision_recall(real, fake, k=3, chunk_size=128)  # several chunks
    density, coverage = density_coverage(real, fake, k=5, chunk_size=128)
    assert float(precision) == pytest.approx(k3["precision"], rel=RTOL)
    assert float(recall) == pytest.approx(k3["recall"], rel=RTOL)
    assert float(density) == pytest.approx(k5["density"], rel=RTOL)
    assert float(coverage) == pytest.approx(k5["coverage"], rel=RTOL)
    combined = prdc_ours(real, fake, k_precision_recall=3, k_density_coverage=5, chunk_size=100)
    assert [float(combined[m]) for m in ("precision", "recall", "density", "coverage")] == pytest.approx(
        [k3["precision"], k3["recall"], k5["density"], k5["coverage"]], rel=RTOL
    )


def test_identical_sets(sets):
    real, _ = sets
    assert abs(float(fid(real, real))) < 1e-6
    assert [float(v) for v in precision_recall(real, real)] == [1.0, 1.0]
    assert float(density_coverage(real, real)[1]) == 1.0


@pytest.mark.parametrize(
    "make", [lambda: FID(64), lambda: KID(subsets=3, subset_size=100), PrecisionRecall, DensityCoverage],
    ids=["FID", "KID", "PrecisionRecall", "DensityCoverage"],
)  # fmt: skip
def test_states_merge_and_metrics_copy(sets, make):
    real, fake = sets
    whole, halves = make(), make()
    whole.update(real, real=True)
    whole.update(fake, real=False)
    for part in (real[:250], real[250:]):
        halves.update(part, real=True)
    for part in (fake[:123], fake[123:]):
        halves.update(part, real=False)
    expected = whole.compute()
    assert torch.allclose(torch.as_tensor(halves.compute()), torch.as_tensor(expected), rtol=1e-9)
    assert torch.allclose(torch.as_tensor(copy.deepcopy(whole).compute()), torch.as_tensor(expected))


def test_metric_with_a_feature_extractor(digits):
    metric = FID(64, feature_extractor=nn.Flatten())
    metric.update(digits.images[:300].double() / 255, real=True)
    metric.update(digits.images[300:700].double() / 255, real=False)
    assert float(metric.compute()) == pytest.approx(float(fid(digits.images[:300].flatten(1).double() / 255,
                                                               digits.images[300:700].flatten(1).double() / 255)))  # fmt: skip
    assert not list(metric.state_dict())  # the extractor is not state


def test_kid_adapts_its_subset_size_and_leaves_the_global_rng_alone(sets):
    real, fake = sets
    state = torch.get_rng_state()
    with pytest.warns(UserWarning, match="subset size lowered from 1000 to 400"):
        mean, std = kid(real, fake, subsets=5)
    assert torch.equal(state, torch.get_rng_state()) and std > 0
    assert float(kid(real, fake, subsets=5, subset_size=100, seed=1)[0]) == float(kid(real, fake, subsets=5, subset_size=100, seed=1)[0])


@pytest.mark.parametrize(
    ("call", "match"),
    [(lambda r, f: fid(r[:1], f), "at least 2 real samples"), (lambda r, f: fid(r, f[:, :10]), "feature dimensions differ"),
     (lambda r, f: kid(r, f[:, :10]), "feature dimensions differ"), (lambda r, f: precision_recall(r[:3], f), "more than 3 samples"),
     (lambda r, f: density_coverage(r, f[:, :5]), "feature dimensions differ"), (lambda r, f: FID(64).update(r[0], real=True), r"\(N, d\)")],
)  # fmt: skip
def test_bad_input(sets, call, match):
    with pytest.raises(ValueError, match=match):
        call(*sets)


def test_fid_warns_below_the_feature_dimension(sets):
    real, fake = sets
    with pytest.warns(UserWarning, match="fewer samples"):
        fid(real[:30], fake[:30])


def test_memorization(sets):
    real, fake = sets
    copies = real[:50] + 1e-9
    ratios, nearest = memorization_ratios(real, copies)
    assert torch.equal(nearest, torch.arange(50)) and float(near_copy_share(ratios)) == 1.0
    ratios, _ = memorization_ratios(real[:250], real[250:])  # other real images: not copies
    assert float(near_copy_share(ratios)) < 0.05
    assert np.isfinite(memorization_ratios(real, fake)[0].numpy()).all()


def _brute_force_prdc(real, fake, k_pr=3, k_dc=5):
    def distances(a, b):
        return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")

    def radii(x, k):
        return distances(x, x).topk(k + 1, dim=1, largest=False).values[:, k]

    d = distances(real, fake)
    r_pr, r_dc, f_pr = radii(real, k_pr), radii(real, k_dc), radii(fake, k_pr)
    return {"precision": float((d <= r_pr[:, None]).any(0).double().mean()), "recall": float((d <= f_pr[None, :]).any(1).double().mean()),
            "density": float((d <= r_dc[:, None]).sum(0).double().mean() / k_dc), "coverage": float((d <= r_dc[:, None]).any(1).double().mean())}  # fmt: skip


@pytest.mark.parametrize("d", [8, 512])
def test_float32_distances_with_exact_rechecks_equal_a_float64_computation(d):
    """Duplicates within and across the sets put samples exactly on ball boundaries: the hardest case for float32."""
    g = torch.Generator().manual_seed(d)
    real = torch.randn(1200, d, generator=g, dtype=torch.float64) * 3 + 5
    fake = torch.randn(900, d, generator=g, dtype=torch.float64) * 3 + 5.2
    fake[:150] = real[:150]
    real[300:320] = real[320:340]
    ours = prdc_ours(real, fake, chunk_size=256)
    assert {k: float(v) for k, v in ours.items()} == _brute_force_prdc(real, fake)
    exact = torch.cdist(real, real, compute_mode="donot_use_mm_for_euclid_dist").topk(4, dim=1, largest=False).values[:, 3]
    assert torch.allclose(knn_radii(real, 3, chunk_size=100), exact, rtol=1e-12, atol=0)


def test_kid_in_float32_agrees_with_float64():
    from synthaug.metrics.functional.kid import _mmd2_unbiased, _poly_kernel

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(800, 512, generator=g, dtype=torch.float64), torch.randn(800, 512, generator=g, dtype=torch.float64) + 0.05
    exact = _mmd2_unbiased(*(_poly_kernel(a, b, 3, None, 1.0) for a, b in ((x, x), (y, y), (x, y))))
    fast = float(kid(x, y, subsets=1, subset_size=800)[0])
    assert fast == pytest.approx(float(exact), rel=1e-5)
