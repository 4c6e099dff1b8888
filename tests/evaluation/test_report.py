"""synthaug.evaluate on real digits: the report, its files, the feature cache, and bad input."""

import json

import pytest
import torch
from torch import nn

import synthaug.metrics.features as features
from synthaug.data import from_arrays
from synthaug.evaluation import evaluate


@pytest.fixture(scope="module")
def split(digits):
    return digits.split(40, seed=0)


@pytest.fixture(scope="module")
def report(split, digits_bank, tmp_path_factory):
    train, test = split
    out = tmp_path_factory.mktemp("report")
    cache = tmp_path_factory.mktemp("cache")
    result = evaluate(test, digits_bank, real_train=train, cas_steps=60, feature_steps=300, kid_subsets=5, out=out, cache_dir=cache)
    return result, out, cache


def test_report_contents(report, digits_bank):
    result, _, _ = report
    assert result.extractor["name"].startswith("domain-cnn") and result.extractor["num_features"] == 64
    assert 0.8 < result.extractor["accuracy"] <= 1.0
    assert set(result.overall) == set(result.floor) == {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    assert result.floor["fid"] < result.overall["fid"]  # real train is closer to real test than the briefly trained VAE
    assert list(result.per_class) == list(digits_bank.class_names)
    assert 0 <= result.cas["synthetic"] <= 1 and result.cas["real"] > 0.5
    # the bank records its generator's 300 training images, all in real_train: memorization compares with those
    assert result.memorization["train_size"] == 300 and 0 <= result.memorization["near_copy_share"] <= 1
    assert any("KID used subsets" in note for note in result.notes)


def test_report_files(report):
    result, out, _ = report
    assert json.loads((out / "report.json").read_text())["overall"] == result.overall
    markdown = (out / "report.md").read_text()
    assert "| fid ↓ |" in markdown and "## Per class" in markdown and "train on synthetic, test on real" in markdown
    assert (out / "samples.png").is_file() and (out / "nearest_neighbours.png").is_file()


def test_domain_classifier_is_cached(report, split, digits_bank, monkeypatch):
    _, _, cache = report
    train, test = split

    def no_training(*args, **kwargs):
        raise AssertionError("the cached domain classifier must be reused")

    monkeypatch.setattr(features, "train_classifier", no_training)
    again = evaluate(test, digits_bank, real_train=train, cas_steps=None, feature_steps=300, kid_subsets=5, cache_dir=cache)
    assert again.overall == report[0].overall and again.cas is None


def test_user_feature_extractor(split, digits_bank):
    train, test = split
    result = evaluate(test, digits_bank, feature_extractor=nn.Flatten(), cas_steps=None, kid_subsets=2)
    assert result.extractor["name"] == "Flatten" and result.extractor["num_features"] == 64
    assert result.floor is None and result.memorization is None


def test_class_sets_must_match(split, digits_bank):
    train, test = split
    renamed = from_arrays(test.images, test.labels, [f"c{i}" for i in range(10)])
    with pytest.raises(ValueError, match="class sets differ"):
        evaluate(renamed, digits_bank, feature_extractor=nn.Flatten())


def test_needs_features_from_somewhere(split, digits_bank):
    with pytest.raises(ValueError, match="real_train=.*or feature_extractor="):
        evaluate(split[1], digits_bank)


def test_extractor_that_rejects_the_images(split, digits_bank):
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(784, 16))  # expects 28x28
    with pytest.raises(ValueError, match=r"does not accept images of shape \(1, 8, 8\)"):
        evaluate(split[1], digits_bank, feature_extractor=wrong)


def test_leaves_the_global_rng_alone(split, digits_bank, report):
    state = torch.get_rng_state()
    evaluate(split[1], digits_bank, real_train=split[0], cas_steps=5, feature_steps=300, kid_subsets=2, cache_dir=report[2])
    assert torch.equal(state, torch.get_rng_state())
