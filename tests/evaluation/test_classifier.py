"""The yardstick classifier: networks, the recipe, each loss-side technique, and reproducibility."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthaug.augment import SyntheticAugment
from synthaug.classifier import (
    ClassifierModule,
    SmallCNN,
    SmallResNet,
    accuracy,
    class_balanced_weights,
    cross_entropy,
    logit_adjustment,
    make_classifier,
    train_classifier,
)

SHAPE = {"image_shape": (1, 8, 8), "num_classes": 10, "accelerator": "cpu"}


def test_learns_digits_reproducibly(digits):
    train, test = digits.split(30, seed=0)
    state = torch.get_rng_state()
    models = [train_classifier(train, steps=150, seed=s, **SHAPE) for s in (0, 0, 1)]
    assert torch.equal(state, torch.get_rng_state())
    scores = [accuracy(m, test) for m in models]
    assert scores[0] > 0.85 and scores[0] == scores[1]
    assert any(not torch.equal(a, b) for a, b in zip(models[0].state_dict().values(), models[2].state_dict().values()))


@pytest.mark.parametrize("name", ["cnn", "resnet"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_yardstick_networks(name, shape):
    model = make_classifier(name, shape, 7)
    assert model(torch.zeros(2, *shape)).shape == (2, 7) and isinstance(model.head, torch.nn.Module)
    with pytest.raises(ValueError, match="unknown yardstick classifier 'vgg'"):
        make_classifier("vgg", shape, 7)


def test_cosine_schedule_warms_up_and_ends_at_zero():
    module = ClassifierModule(SmallCNN(1, 10), lr=1e-2, steps=100, warmup=0.1)
    scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(100):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(1e-3) and rates[9] == pytest.approx(1e-2)
    assert max(rates) == pytest.approx(1e-2) and rates[-1] < 1e-5 and all(a >= b for a, b in zip(rates[10:], rates[11:]))


def test_weight_decay_spares_norms_and_biases():
    groups = ClassifierModule(SmallResNet(1, 10), steps=10, weight_decay=0.1).configure_optimizers()["optimizer"].param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert all(p.ndim > 1 for p in groups[0]["params"]) and all(p.ndim == 1 for p in groups[1]["params"])


def test_cross_entropy_with_weights_soft_targets_and_class_weights():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    assert cross_entropy(logits, labels) == pytest.approx(F.cross_entropy(logits, labels).item())
    soft = F.one_hot(labels, 4).float()
    assert cross_entropy(logits, soft) == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    weight = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.5, 1.0])
    per_item = F.cross_entropy(logits, labels, reduction="none")
    assert cross_entropy(logits, labels, weight) == pytest.approx((per_item * weight).mean().item())
    class_weights = torch.tensor([1.0, 2.0, 0.5, 1.0])
    assert cross_entropy(logits, labels, class_weights=class_weights) == pytest.approx(
        F.cross_entropy(logits, labels, weight=class_weights).item()
    )
    adjustment = logit_adjustment([100, 10, 10, 1])
    assert cross_entropy(logits, labels, adjustment=adjustment) == pytest.approx(F.cross_entropy(logits + adjustment, labels).item())


def test_logit_adjustment_and_class_balanced_weights():
    assert logit_adjustment([3, 1], tau=2.0).tolist() == pytest.approx([2 * math.log(0.75), 2 * math.log(0.25)])
    weights = class_balanced_weights([1000, 10], beta=0.999)
    expected = np.array([(1 - 0.999) / (1 - 0.999**1000), (1 - 0.999) / (1 - 0.999**10)])
    assert weights.tolist() == pytest.approx((expected / expected.mean()).tolist(), rel=1e-5)
    with pytest.raises(ValueError, match="positive"):
        logit_adjustment([3, 0])


def _imbalanced(digits):
    keep = torch.cat([torch.nonzero(digits.labels == c).flatten()[: 40 if c < 5 else 4] for c in range(10)])
    return digits.select(keep)


def test_long_tail_techniques_reach_the_loss(digits, monkeypatch):
    data = _imbalanced(digits)
    seen = {}
    original = ClassifierModule.__init__

    def spy(self, model, **kwargs):
        seen.update(kwargs)
        original(self, model, **kwargs)

    monkeypatch.setattr(ClassifierModule, "__init__", spy)
    train_classifier(data, steps=6, logit_adjust=1.0, reweight="drw", drw_start=0.5, **SHAPE)
    counts = torch.tensor([40] * 5 + [4] * 5)
    assert torch.allclose(seen["adjustment"], logit_adjustment(counts)) and seen["reweight_from"] == 3
    assert torch.allclose(seen["class_weights"], class_balanced_weights(counts))


def test_balanced_sampler_draws_every_class_about_equally(digits):
    from synthaug.classifier.training import _sampler

    data = _imbalanced(digits)
    drawn = data.labels[list(_sampler(data, "balanced", 0, 10))]
    counts = torch.bincount(drawn, minlength=10)
    assert len(drawn) == len(data) and counts.min() >= 0.4 * counts.float().mean()


def test_head_only_fine_tuning_freezes_the_rest(digits):
    train = digits.subset(20, seed=0)
    model = train_classifier(train, steps=20, **SHAPE)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = train_classifier(train, model=model, steps=20, trainable="head", seed=1, **SHAPE)
    changed = {k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("head.") for k in changed)
    assert all(p.requires_grad for p in tuned.parameters())  # unfrozen again afterwards
    with pytest.raises(ValueError, match="needs a model with a `head`"):
        ClassifierModule(torch.nn.Linear(3, 2), trainable="head", steps=1)


def test_mixup_and_dict_items_with_soft_targets_and_weights(digits, digits_bank):
    train, test = digits.split(20, seed=0)
    mixed = SyntheticAugment(train, digits_bank, ratio=0.5, item="dict", synthetic_weight=0.5)
    runs = [accuracy(train_classifier(mixed, steps=120, mixup_alpha=0.2, **SHAPE), test) for _ in range(2)]
    assert runs[0] == runs[1] and runs[0] > 0.7


def test_trains_through_synthetic_augment(digits, digits_bank):
    train, test = digits.split(10, seed=0)
    model = train_classifier(SyntheticAugment(train, digits_bank, ratio=1.0), steps=100, **SHAPE)
    assert accuracy(model, test) > 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"reweight": "focal"}, "reweight must be"), ({"sampler": "stratified"}, "sampler must be"),
     ({"steps": 0}, "steps and batch_size"), ({"logit_adjust": -1.0}, "tau must be")],
)  # fmt: skip
def test_bad_options(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_classifier(digits.subset(5, seed=0), **{"steps": 2, **kwargs}, **SHAPE)
