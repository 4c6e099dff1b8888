"""Arm(fresh=True): the appended bank samples are drawn fresh every epoch (SyntheticAugment(draw="fresh"))."""

import pytest

import synthaug.evaluation.runner as runner
from synthaug.evaluation import Arm, downstream


def test_a_fresh_arm_builds_a_fresh_draw(digits, digits_bank, monkeypatch):
    train, test = digits.split(30, seed=0)
    draws = []
    real_train = runner.train_classifier

    def spy(dataset, **kwargs):
        draws.append(getattr(dataset, "draw", None))
        return real_train(dataset, **{**kwargs, "steps": 2})

    monkeypatch.setattr(runner, "train_classifier", spy)
    arms = [Arm("bank", digits_bank, ratio=0.5), Arm("bank fresh", digits_bank, ratio=0.5, fresh=True)]
    downstream(train, test, arms=arms, sizes=[5], seeds=[0], steps=2, batch_size=16)
    assert draws[-2:] == ["random", "fresh"]  # after the real-only arm


def test_fresh_keeps_cache_keys_and_needs_appended_samples():
    assert "fresh" not in Arm("x", "bank", ratio=0.5).options() and Arm("x", "bank", ratio=0.5, fresh=True).options()["fresh"]
    with pytest.raises(ValueError, match="fresh draws the appended samples of a synthetic source; it needs a source"):
        Arm("x", fresh=True)
    with pytest.raises(ValueError, match="no mix_alpha"):
        Arm("x", "bank", ratio=0.5, mix_alpha=0.4, fresh=True)
