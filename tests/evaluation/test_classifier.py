"""The yardstick classifier: it learns, it is reproducible, and it leaves the global RNG alone."""

import torch

from synthaug.augment import SyntheticAugment
from synthaug.evaluation import accuracy, train_classifier


def test_learns_digits_reproducibly(digits):
    train, test = digits.split(30, seed=0)
    state = torch.get_rng_state()
    models = [train_classifier(train, image_shape=(1, 8, 8), num_classes=10, steps=150, seed=s, accelerator="cpu") for s in (0, 0, 1)]
    assert torch.equal(state, torch.get_rng_state())
    scores = [accuracy(m, test) for m in models]
    assert scores[0] > 0.85 and scores[0] == scores[1]
    assert any(not torch.equal(a, b) for a, b in zip(models[0].state_dict().values(), models[2].state_dict().values()))


def test_trains_through_synthetic_augment(digits, digits_bank):
    train, test = digits.split(10, seed=0)
    model = train_classifier(SyntheticAugment(train, digits_bank, ratio=1.0), image_shape=(1, 8, 8), num_classes=10,
                             steps=100, accelerator="cpu")  # fmt: skip
    assert accuracy(model, test) > 0.5
