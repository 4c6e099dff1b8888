"""The downstream harness on digits: every arm and technique end to end, caching, statistics, the report."""

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score
from torch import nn

import synthaug.evaluation.runner as runner
from synthaug.evaluation import (
    Arm,
    DownstreamReport,
    classic_augmentation,
    downstream,
    mean_interval,
    rarest,
    real_copies,
    scores,
    standard_arms,
    technique_arms,
)
from synthaug.evaluation.stats import confusion

FAST = {"steps": 40, "batch_size": 32, "classic_options": {"hflip": False}}


@pytest.fixture(scope="module")
def train_test(digits):
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


def test_scores_match_scikit_learn():
    rng = torch.Generator().manual_seed(0)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([50, 30, 10, 5])])
    predictions = torch.where(torch.rand(len(labels), generator=rng) < 0.7, labels, torch.randint(4, (len(labels),), generator=rng))
    predictions[labels == 3] = 0  # class 3 is never predicted: its F1 is 0
    out = scores(confusion(predictions, labels, 4), {"rare": [2, 3]})
    assert out["accuracy"] == pytest.approx(float((predictions == labels).double().mean()))
    assert out["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predictions))
    assert out["macro_f1"] == pytest.approx(f1_score(labels, predictions, average="macro", zero_division=0))
    rare = (labels >= 2)
    assert out["group:rare"] == pytest.approx(float((predictions[rare] == labels[rare]).double().mean()))
    assert out["per_class"][3] == 0.0


def test_report_pairs_differences_by_seed_against_real_and_the_named_arm():
    def run(arm, seed, acc, per_class, against=None):
        return {"size": 10, "classifier": "cnn", "arm": arm, "seed": seed, "real_only": arm == "real", "against": against,
                "accuracy": acc, "balanced_accuracy": acc, "macro_f1": acc, "per_class": per_class}  # fmt: skip

    runs = [run("real", 0, 0.70, [0.6, 0.8]), run("real", 1, 0.74, [0.7, 0.78]), run("real", 2, 0.72, [0.64, 0.8]),
            run("base", 0, 0.71, [0.6, 0.8]), run("base", 1, 0.76, [0.7, 0.8]), run("base", 2, 0.74, [0.64, 0.8]),
            run("aug", 2, 0.75, [0.7, 0.8], "base"), run("aug", 0, 0.73, [0.66, 0.8], "base"), run("aug", 1, 0.78, [0.76, 0.8], "base")]  # fmt: skip
    report = DownstreamReport(["a", "b"], 100, {"seeds": [0, 1, 2], "steps": 1, "batch_size": 1}, runs)
    aug = report.row("aug")
    differences = [0.73 - 0.70, 0.78 - 0.74, 0.75 - 0.72]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(differences), scale=stats.sem(differences))
    assert aug["vs_real"]["accuracy"] == pytest.approx((np.mean(differences), low, high))
    assert aug["vs_against"]["accuracy"][0] == pytest.approx(np.mean([0.02, 0.02, 0.01]))
    assert aug["per_class_vs_real"] == pytest.approx([0.06, 0.02 / 3])
    assert "vs_real" not in report.row("real")
    table = report.to_markdown()
    assert "| 10 | aug | 75.33 [" in table and "| base | +1.67 [" in table
    # any two arms, paired by seed: aug - real equals the summary's vs_real
    assert report.compare("aug", "real")["accuracy"] == pytest.approx(aug["vs_real"]["accuracy"])
    assert report.compare("base", "aug")["accuracy"][0] == pytest.approx(-np.mean([0.02, 0.02, 0.01]))
    with pytest.raises(KeyError, match="no runs of arm 'nope'"):
        report.compare("aug", "nope")
    two_sizes = DownstreamReport(["a", "b"], 100, {}, runs + [{**runs[0], "size": 20}])
    with pytest.raises(ValueError, match="pass size= and classifier="):
        two_sizes.compare("aug", "real")
    assert two_sizes.compare("aug", "real", size=10)["seeds"] == [0, 1, 2]


def test_downstream_runs_every_arm_and_caches(train_test, digits_bank, tmp_path, monkeypatch):
    train, test = train_test
    arms = [Arm("real"), Arm("real + classic", classic=True), Arm("bank", digits_bank, ratio=0.5),
            Arm("bank kept", digits_bank, ratio=0.5, keep=0.5)]  # fmt: skip
    kwargs = {"arms": arms, "sizes": [5], "seeds": [0, 1], "cache_dir": tmp_path / "cache", "groups": {"small": [0, 1]}}
    report = downstream(train, test, out=tmp_path / "out", **kwargs, **FAST)
    assert [(r["arm"], r["seed"]) for r in report.runs] == [(a.name, s) for s in (0, 1) for a in arms]
    assert all(0.25 < r["accuracy"] <= 1 and len(r["per_class"]) == 10 and "group:small" in r for r in report.runs)
    assert {r["arm"] for r in report.summary if "vs_real" in r} == {"real + classic", "bank", "bank kept"}
    for name in ("downstream.json", "downstream.md", "downstream.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert json.loads((tmp_path / "out" / "downstream.json").read_text())["runs"] == json.loads(json.dumps(report.runs))

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(runner, "train_classifier", no_training)
    again = downstream(train, test, **kwargs, **FAST)
    assert again.runs == report.runs
    with pytest.raises(AssertionError, match="trained again"):  # other settings: not taken from the cache
        downstream(train, test, **{**kwargs, "seeds": [0]}, **{**FAST, "steps": 41})


def test_each_seed_draws_its_own_subset_unless_one_is_fixed(train_test):
    train, test = train_test
    seen = []

    def record(subset):
        seen.append(subset.images.numpy().tobytes())
        return subset

    arms = [Arm("copies", record, ratio=0.1)]
    downstream(train, test, arms=arms, sizes=[5], seeds=[0, 1], **{**FAST, "steps": 2})
    downstream(train, test, arms=arms, sizes=[5], seeds=[0, 1], subset_seed=7, **{**FAST, "steps": 2})
    assert seen[0] != seen[1] and seen[2] == seen[3]


def test_same_seed_same_result_and_real_arm_is_added(train_test, digits_bank):
    train, test = train_test
    first = downstream(train, test, arms=[Arm("bank", digits_bank, ratio=1.0)], sizes=[5], seeds=[3], **FAST)
    second = downstream(train, test, arms=[Arm("bank", digits_bank, ratio=1.0)], sizes=[5], seeds=[3], **FAST)
    assert [r["arm"] for r in first.runs] == ["real", "bank"]
    assert first.runs == second.runs


def test_sources_per_size_per_seed_and_from_a_function(train_test, digits_bank):
    train, test = train_test
    seen = []

    def make(subset):
        seen.append(len(subset))
        return digits_bank

    arms = [Arm("mapped", {4: digits_bank, (6, 0): digits_bank}, ratio=0.5), Arm("made", make, ratio=0.5)]
    report = downstream(train, test, arms=arms, sizes=[4, 6], seeds=[0], **FAST)
    assert seen == [40, 60] and sorted({r["size"] for r in report.runs}) == [4, 6]
    with pytest.raises(ValueError, match="not for size 5, seed 0"):
        downstream(train, test, arms=arms, sizes=[5], seeds=[0], **FAST)


def test_every_technique_end_to_end(train_test, digits_bank, tmp_path):
    """Each technique as an arm, with its control, on both yardstick classifiers."""
    train, test = train_test
    arms = [Arm("real"), Arm("real + classic", classic=True)] + technique_arms("vae", digits_bank, ratio=0.5, finetune_steps=10)
    arms += [Arm("hard teacher", digits_bank, ratio=0.5, teacher="hard"), Arm("balance", digits_bank, mode="balance")]
    report = downstream(train, test, arms=arms, sizes=[5], seeds=[0], classifiers=("cnn", "resnet"), **FAST,
                        groups={"rarest 2": rarest(2)}, cache_dir=tmp_path)  # fmt: skip
    assert len(report.runs) == 2 * len(arms)
    assert all(r["accuracy"] > 0.2 for r in report.runs), [(r["arm"], r["accuracy"]) for r in report.runs]
    row = report.row("real + classic + vae teacher", classifier="resnet")
    assert row["against"] == "real + classic" and "vs_against" in row
    teacher_weights = list(tmp_path.rglob("*.safetensors"))
    assert len(teacher_weights) == 2  # the teacher arm's model, once per classifier


def test_techniques_change_what_is_trained(train_test, digits_bank, monkeypatch):
    """The datasets and options each arm hands to train_classifier."""
    train, test = train_test
    calls = []
    real_train = runner.train_classifier

    def spy(dataset, **kwargs):
        calls.append((dataset, kwargs))
        return real_train(dataset, **{**kwargs, "steps": 2})

    monkeypatch.setattr(runner, "train_classifier", spy)
    arms = [Arm("real + classic", classic=True),
            Arm("teacher", digits_bank, ratio=0.5, teacher="soft", temperature=2.0),
            Arm("weight", digits_bank, ratio=0.5, synthetic_weight=0.25),
            Arm("two stages", digits_bank, ratio=0.5, finetune_steps=5, finetune_part="head"),
            Arm("filtered", digits_bank, ratio=0.5, drop_wrong=0.5, drop_easy=0.5),
            Arm("mixup", digits_bank, ratio=0.5, mix_alpha=0.4),
            Arm("fading", digits_bank, ratio=0.5, share_end=0.0),
            Arm("control", real_copies, ratio=0.5, teacher="soft"),
            Arm("la", logit_adjust=1.0, reweight="drw", sampler="balanced", mixup_alpha=0.2)]  # fmt: skip
    downstream(train, test, arms=arms, sizes=[5], seeds=[0], **FAST)
    first_stages = [call for call in calls if "trainable" not in call[1]]
    by_arm = dict(zip(["real", "real + classic", *[a.name for a in arms[1:]]], first_stages, strict=True))
    teacher_set = by_arm["teacher"][0]
    assert teacher_set._pool_targets is not None and teacher_set.temperature == 2.0
    assert by_arm["weight"][0].item == "dict" and by_arm["weight"][0].synthetic_weight == 0.25
    finetune = [kwargs for dataset, kwargs in calls if kwargs.get("trainable") == "head"]
    assert len(finetune) == 1 and finetune[0]["steps"] == 5
    assert len(by_arm["filtered"][0].source) < len(digits_bank)
    assert by_arm["mixup"][1]["batch_transform"].mode == "mixup"
    assert by_arm["fading"][0].share(0) == 1.0 and by_arm["fading"][0].share(10**6) == 0.0
    assert by_arm["control"][0].source.data is not digits_bank and len(by_arm["control"][0].source) == 50
    la = by_arm["la"][1]
    assert (la["logit_adjust"], la["reweight"], la["sampler"], la["mixup_alpha"]) == (1.0, "drw", "balanced", 0.2)


def test_classifier_factories_and_lightning_modules(train_test):
    train, test = train_test

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

    classifiers = {"lightning": Linear, "linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10))}
    report = downstream(train, test, arms=[Arm("real")], sizes=[10], seeds=[0], classifiers=classifiers, **{**FAST, "steps": 60})
    assert {r["classifier"] for r in report.runs} == {"lightning", "linear"}
    assert all(r["accuracy"] > 0.5 for r in report.runs)
    with pytest.warns(FutureWarning, match="classifiers="):
        downstream(train, test, arms=[Arm("real")], sizes=[10], seeds=[0], classifier=classifiers["linear"], **{**FAST, "steps": 2})


def test_bad_arms_are_refused(train_test, digits_bank, digits_generator):
    train, test = train_test
    with pytest.raises(ValueError, match="no ratio"):
        Arm("x", digits_bank)
    with pytest.raises(ValueError, match="sets ratio but has no synthetic source"):
        Arm("x", ratio=0.5)
    with pytest.raises(ValueError, match="keep must lie"):
        Arm("x", digits_bank, ratio=0.5, keep=1.5)
    with pytest.raises(ValueError, match="synthetic_weight must be"):
        Arm("x", digits_bank, ratio=0.5, synthetic_weight=-1)
    with pytest.raises(ValueError, match=r"share_end must lie in \[0, 1\]"):
        Arm("x", digits_bank, ratio=0.5, share_end=2)
    with pytest.raises(ValueError, match="unique"):
        downstream(train, test, arms=[Arm("real"), Arm("real")], **FAST)
    with pytest.raises(ValueError, match="compared against"):
        downstream(train, test, arms=[Arm("x", classic=True, against="nope")], **FAST)
    with pytest.raises(ValueError, match="need the teacher arm"):
        downstream(train, test, arms=[Arm("t", digits_bank, ratio=0.5, teacher="soft")], **FAST)
    with pytest.raises(ValueError, match="SyntheticBank, not a generator"):
        downstream(train, test, arms=[Arm("real + classic", classic=True), Arm("g", digits_generator, ratio=0.5, keep=0.5)],
                   sizes=[3], seeds=[0], **FAST)  # fmt: skip


def test_standard_arms_grid(digits_bank):
    arms = standard_arms({"vae": digits_bank}, ratios=(0.25, 1.0))
    assert [arm.name for arm in arms] == ["real", "real + classic", "real + vae 0.25", "real + vae 1", "real + classic + vae 0.5"]
    assert arms[-1].against == "real + classic"


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


def test_old_harness_module_still_imports_with_a_warning():
    import importlib
    import sys

    sys.modules.pop("synthaug.evaluation.harness", None)
    with pytest.warns(FutureWarning, match="harness is deprecated"):
        harness = importlib.import_module("synthaug.evaluation.harness")
    assert harness.downstream is downstream


def test_long_tailed_baselines_and_balance_arms_on_digits(digits, digits_bank):
    from synthaug.evaluation import long_tail_arms, long_tail_baselines

    train, test = digits.split(40, seed=0)

    def subsets(data, size, seed):
        return data.subset_long_tailed(size, 8, seed=seed)

    arms = long_tail_baselines() + long_tail_arms({"vae": digits_bank}, techniques=["vae"])
    report = downstream(train, test, arms=arms, sizes=[40], seeds=[0, 1], subsets=subsets, groups={"rarest 3": rarest(3)}, **FAST)
    assert {r["arm"] for r in report.runs} == {a.name for a in arms}
    counts = {tuple(r["counts"]) for r in report.runs if r["seed"] == 1}
    assert len(counts) == 1 and max(next(iter(counts))) == 40 and min(next(iter(counts))) == 5
    rarest_classes = [r["groups"]["rarest 3"] for r in report.runs if r["seed"] == 1][0]
    assert sorted(next(iter(counts)))[:3] == sorted(next(iter(counts))[c] for c in rarest_classes)
    row = report.row("classic + mixup + vae balance")
    assert row["against"] == "classic + mixup" and "group:rarest 3" in row["vs_against"]
