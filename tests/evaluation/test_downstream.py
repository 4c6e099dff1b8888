import json
import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

import synthaug.evaluation.harness as harness
from synthaug.evaluation import (
    Arm,
    DownstreamReport,
    classic_augmentation,
    downstream,
    keep_confident,
    mean_interval,
    standard_arms,
)

FAST = {"steps": 40, "batch_size": 32, "log": None}


@pytest.fixture(scope="module")
def split(digits):
    return digits.split(30, seed=0)


@pytest.mark.parametrize("values", [[0.81, 0.83, 0.8], [0.5, 0.7], [0.9, 0.91, 0.93, 0.88, 0.9]])
def test_mean_interval_matches_scipy(values):
    mean, low, high = mean_interval(values)
    ref_low, ref_high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx((ref_low, ref_high), rel=1e-12)


def test_mean_interval_of_one_value_has_no_bounds():
    mean, low, high = mean_interval([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)


def test_report_pairs_differences_by_seed():
    def run(arm, seed, acc, per_class):
        return {"size": 10, "arm": arm, "seed": seed, "real_only": arm == "real", "accuracy": acc, "per_class": per_class}

    runs = [run("real", 0, 0.70, [0.6, 0.8]), run("real", 1, 0.74, [0.7, 0.78]), run("real", 2, 0.72, [0.64, 0.8]),
            run("aug", 2, 0.75, [0.7, 0.8]), run("aug", 0, 0.73, [0.66, 0.8]), run("aug", 1, 0.78, [0.76, 0.8])]  # fmt: skip
    report = DownstreamReport(["a", "b"], 100, {"seeds": [0, 1, 2], "classifier": "x", "steps": 1, "batch_size": 1}, runs)
    aug = next(r for r in report.summary if r["arm"] == "aug")
    differences = [0.73 - 0.70, 0.78 - 0.74, 0.75 - 0.72]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(differences), scale=stats.sem(differences))
    assert aug["difference"] == pytest.approx(np.mean(differences))
    assert (aug["difference_low"], aug["difference_high"]) == pytest.approx((low, high))
    assert aug["per_class_difference"] == pytest.approx([0.06, 0.0 + (0.02 - 0.0) / 3])
    assert "difference" not in next(r for r in report.summary if r["arm"] == "real")
    assert "| 10 | aug | 75.33 |" in report.to_markdown()


def test_downstream_runs_every_arm_and_caches(split, digits_bank, tmp_path, monkeypatch):
    train, test = split
    arms = [Arm("real"), Arm("classic", classic=True), Arm("bank", digits_bank, ratio=0.5),
            Arm("bank kept", digits_bank, ratio=0.5, keep=0.5)]  # fmt: skip
    kwargs = {"arms": arms, "sizes": [5], "seeds": [0, 1], "cache_dir": tmp_path / "cache", "classic_options": {"hflip": False}}
    report = downstream(train, test, out=tmp_path / "out", **kwargs, **FAST)
    assert [(r["arm"], r["seed"]) for r in report.runs] == [(a.name, s) for a in arms for s in (0, 1)]
    assert all(0.25 < r["accuracy"] <= 1 and len(r["per_class"]) == 10 for r in report.runs)  # well above chance (0.1)
    assert {r["arm"] for r in report.summary if "difference" in r} == {"classic", "bank", "bank kept"}
    for name in ("downstream.json", "downstream.md", "downstream.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert json.loads((tmp_path / "out" / "downstream.json").read_text())["runs"] == report.runs

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(harness, "train_classifier", no_training)
    again = downstream(train, test, **kwargs, **FAST)
    assert again.runs == report.runs
    with pytest.raises(AssertionError, match="trained again"):  # other settings: not taken from the cache
        downstream(train, test, **{**kwargs, "seeds": [0]}, **{**FAST, "steps": 41})


def test_same_seed_same_accuracy_and_real_arm_is_added(split, digits_bank):
    train, test = split
    first = downstream(train, test, arms=[Arm("bank", digits_bank, ratio=1.0)], sizes=[5], seeds=[3], **FAST)
    second = downstream(train, test, arms=[Arm("bank", digits_bank, ratio=1.0)], sizes=[5], seeds=[3], **FAST)
    assert [r["arm"] for r in first.runs] == ["real", "bank"]
    assert first.runs == second.runs


def test_sources_per_size_and_from_a_function(split, digits_bank):
    train, test = split
    seen = []

    def make(subset):
        seen.append(len(subset))
        return digits_bank

    arms = [Arm("mapped", {4: digits_bank, 6: digits_bank}, ratio=0.5), Arm("made", make, ratio=0.5)]
    report = downstream(train, test, arms=arms, sizes=[4, 6], seeds=[0], **FAST)
    assert seen == [40, 60] and sorted({r["size"] for r in report.runs}) == [4, 6]
    with pytest.raises(ValueError, match="not for 5"):
        downstream(train, test, arms=arms, sizes=[5], seeds=[0], **FAST)


def test_classifier_factory_and_lightning_module(split):
    train, test = split

    class Linear(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0].float() / 127.5 - 1), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    for factory in (Linear, lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10))):
        report = downstream(train, test, sizes=[10], seeds=[0], classifier=factory, **{**FAST, "steps": 60})
        assert report.runs[0]["accuracy"] > 0.5


def test_bad_arms_are_refused(split, digits_bank, digits_generator):
    train, test = split
    with pytest.raises(ValueError, match="no ratio"):
        Arm("x", digits_bank)
    with pytest.raises(ValueError, match="no synthetic source"):
        Arm("x", ratio=0.5)
    with pytest.raises(ValueError, match="keep must lie"):
        Arm("x", digits_bank, ratio=0.5, keep=1.5)
    with pytest.raises(ValueError, match="unique"):
        downstream(train, test, arms=[Arm("real"), Arm("real")], **FAST)
    with pytest.raises(ValueError, match="SyntheticBank, not a generator"):
        downstream(train, test, arms=[Arm("g", digits_generator, ratio=0.5, keep=0.5)], sizes=[3], seeds=[0], **FAST)


def test_standard_arms_grid(digits_bank):
    names = [arm.name for arm in standard_arms({"vae": digits_bank}, ratios=(0.25, 1.0))]
    assert names == ["real", "real + classic", "real + vae 0.25", "real + vae 1", "real + classic + vae 0.5"]


def test_keep_confident_keeps_the_judges_favourites(digits_bank):
    class Judge(nn.Module):  # believes in class 0 for bright images, class 1 otherwise
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            brightness = x.mean((1, 2, 3))
            return torch.stack([brightness, -brightness, *[torch.full_like(brightness, -9.0)] * 8], 1)

    kept = keep_confident(digits_bank, Judge(), 0.25)
    assert kept.counts == [10] * 10
    zeros = digits_bank.images(digits_bank.indices_of(0)).float().mean((1, 2, 3))
    kept_zeros = kept.images(kept.indices_of(0)).float().mean((1, 2, 3))
    assert kept_zeros.min() >= zeros.sort(descending=True).values[9]


@pytest.mark.parametrize("backend", ["torch", "albumentations"])
def test_classic_augmentation_flips_and_shifts(backend):
    image = torch.randint(1, 255, (1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    augment = classic_augmentation((1, 8, 8), shift=0.125, seed=0, backend=backend)
    outputs = [augment(image) for _ in range(40)]
    candidates = []
    for flipped in (image, image.flip(-1)):
        padded = F.pad(flipped, (1, 1, 1, 1))
        candidates += [padded[:, y : y + 8, x : x + 8] for y in range(3) for x in range(3)]
    assert all(any(torch.equal(out, c) for c in candidates) for out in outputs)
    assert len({out.numpy().tobytes() for out in outputs}) > 5
    again = classic_augmentation((1, 8, 8), shift=0.125, seed=0, backend=backend)
    assert all(torch.equal(out, again(image)) for out in outputs)  # seeded
    with pytest.raises(ValueError, match="shift must lie"):
        classic_augmentation((1, 8, 8), shift=0.6)
