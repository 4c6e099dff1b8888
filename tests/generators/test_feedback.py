"""Classifier-feedback sampling (diffusion/feedback.py): what it changes, what it leaves alone, bad input."""

import json

import pytest
import torch
from torch import nn

from synthaug.bank import SyntheticBank
from synthaug.data.labeled import to_signed_unit
from synthaug.generators import create, sample_uint8
from synthaug.generators.base import module_sha256
from synthaug.generators.diffusion.feedback import criterion_values
from synthaug.synthetic import source_fingerprint
from tests.conftest import TINY_DDPM

LABELS = torch.arange(10).repeat_interleave(4)


def _ddpm():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create("ddpm", num_classes=10, image_shape=(1, 8, 8), class_names=list("0123456789"), **TINY_DDPM)


@pytest.fixture(scope="module")
def ddpm():
    return _ddpm()


@pytest.fixture(scope="module")
def classifier(digits):
    """A small MLP trained on every digit (100% train accuracy), left in train mode with dropout on purpose."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        images, labels = to_signed_unit(digits.images), digits.labels
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(200):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model.train()


def _criterion(classifier, images, name):
    classifier = classifier.eval()
    try:
        with torch.no_grad():
            return float(criterion_values(classifier(images), LABELS, name).mean())
    finally:
        classifier.train()


def _sample(ddpm, **options):
    return ddpm.sample(LABELS, generator=torch.Generator().manual_seed(0), steps=10, **options)


def test_scale_zero_is_bit_identical_to_no_feedback(ddpm, classifier):
    plain = _sample(ddpm)
    assert torch.equal(_sample(ddpm, feedback=classifier, feedback_scale=0.0), plain)
    assert torch.equal(_sample(ddpm, feedback=None, feedback_scale=0.5), plain)
    assert not torch.equal(_sample(ddpm, feedback=classifier, feedback_scale=0.05), plain)


@pytest.mark.parametrize("criterion", ["entropy", "loss"])
def test_feedback_raises_its_criterion(ddpm, classifier, criterion):
    """At a fixed seed, the classifier is less sure of guided samples (entropy) or finds them harder
    for their own class (loss), and more so at a larger scale."""
    values = [_criterion(classifier, _sample(ddpm, feedback=classifier, feedback_scale=s, feedback_criterion=criterion),
                         criterion) for s in (0.0, 0.02, 0.05)]  # fmt: skip
    assert values[0] < values[1] < values[2], values


def test_determinism_grads_and_modes_are_left_alone(ddpm, classifier):
    modes = [m.training for m in classifier.modules()]
    global_state = torch.random.get_rng_state()
    a = _sample(ddpm, feedback=classifier, feedback_scale=0.05, guidance=2.0)
    b = _sample(ddpm, feedback=classifier, feedback_scale=0.05, guidance=2.0)
    assert torch.equal(a, b), "a seeded generator gives the same samples (dropout is off while guiding)"
    assert torch.equal(torch.random.get_rng_state(), global_state), "the global RNG is not drawn from"
    assert [m.training for m in classifier.modules()] == modes
    assert all(p.grad is None for p in [*ddpm.parameters(), *classifier.parameters()])
    assert torch.is_grad_enabled()


def test_each_sample_depends_on_its_own_generator_only(ddpm, classifier):
    options = {"feedback": classifier, "feedback_scale": 0.05, "steps": 4}
    rngs = [torch.Generator().manual_seed(100 + i) for i in range(4)]
    together = ddpm.sample([1, 2, 3, 4], generator=rngs, **options)
    alone = ddpm.sample([3], generator=[torch.Generator().manual_seed(102)], **options)
    torch.testing.assert_close(together[2:3], alone, atol=1e-5, rtol=0)


def test_through_sample_uint8_a_bank_and_a_source_fingerprint(ddpm, classifier, tmp_path):
    options = {"feedback": classifier, "feedback_scale": 0.05, "feedback_criterion": "loss", "steps": 3}
    direct = sample_uint8(ddpm, [0, 0, 1, 1], generator=torch.Generator().manual_seed(0), **options)
    assert direct.dtype == torch.uint8 and direct.shape == (4, 1, 8, 8)

    bank = SyntheticBank.generate(ddpm, path=tmp_path / "bank", per_class=2, sample_options=options)
    manifest = json.loads((bank.path / "manifest.json").read_text())
    recorded = manifest["sample_options"]["feedback"]
    assert recorded == {"class": "torch.nn.modules.container.Sequential", "sha256": module_sha256(classifier)}
    assert manifest["sample_options"]["feedback_criterion"] == "loss" and manifest["sample_options"]["feedback_scale"] == 0.05
    plain = SyntheticBank.generate(ddpm, path=tmp_path / "plain", per_class=2, sample_options={"steps": 3})
    assert "feedback" not in json.loads((plain.path / "manifest.json").read_text())["sample_options"]
    assert not torch.equal(bank.images(range(20)), plain.images(range(20)))
    # the same request reopens the bank; the same options give the same images as sampling directly
    assert SyntheticBank.generate(ddpm, path=tmp_path / "bank", per_class=2, sample_options=options).sha256 == bank.sha256

    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert module_sha256(other) != module_sha256(classifier)
    assert source_fingerprint(ddpm, options) != source_fingerprint(ddpm, {**options, "feedback": other})
    assert source_fingerprint(ddpm, {"feedback": classifier, "feedback_scale": 0.0}) == source_fingerprint(ddpm)


def test_a_classifier_of_another_class_count_is_refused(ddpm):
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(64, 7))
    with pytest.raises(ValueError, match=r"^the feedback classifier gives 7 logits per image but the generator has 10 classes; use"):
        ddpm.sample([0, 1], feedback=wrong, steps=2)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"feedback_scale": -0.1}, r"feedback_scale must be a finite number >= 0 .*got -0.1"),
     ({"feedback_scale": float("nan")}, "feedback_scale must be a finite number >= 0 .*got nan"),
     ({"feedback_scale": float("inf")}, "got inf"),
     ({"feedback_criterion": "margin"}, r"feedback_criterion must be one of \['entropy', 'loss'\], got 'margin'"),
     ({"feedback": "runs/classifier"}, "feedback must be a classifier .*got str 'runs/classifier'")],
)  # fmt: skip
def test_bad_feedback_options(ddpm, classifier, options, match):
    with pytest.raises(ValueError, match=match):
        ddpm.sample([0], steps=2, **{"feedback": classifier, **options})


def test_a_bank_needs_a_module_it_can_fingerprint(ddpm, classifier, tmp_path):
    with pytest.raises(ValueError, match="feedback function cannot be recorded .*pass an nn.Module"):
        SyntheticBank.generate(ddpm, path=tmp_path, per_class=1, sample_options={"feedback": lambda x: classifier(x)})


def test_feedback_under_the_edm_parameterization(classifier):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        edm = create("ddpm", num_classes=10, image_shape=(1, 8, 8), parameterization="edm", **TINY_DDPM)
    for sampler in ("heun", "dpm++2m"):
        runs = [_sample(edm, sampler=sampler, feedback=classifier, feedback_scale=s) for s in (0.0, 0.05)]
        assert torch.equal(runs[0], _sample(edm, sampler=sampler))
        assert _criterion(classifier, runs[0], "entropy") < _criterion(classifier, runs[1], "entropy")
