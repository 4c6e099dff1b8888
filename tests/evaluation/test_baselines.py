"""The strong real-only baselines (policies, CutMix, label smoothing) and synthetic arms on top of them, on digits."""

import pytest
import torch

import synthaug.evaluation.runner as runner
from synthaug.evaluation import Arm, baseline_arms, downstream, mixed_arm, policy_arm, real_copies, synthetic_arms
from synthaug.policies import AugmentPolicy

pytest.importorskip("kornia")
FAST = {"steps": 30, "batch_size": 32, "classic_options": {"hflip": False}}


@pytest.fixture(scope="module")
def train_test(digits):
    return digits.split(30, seed=0)


def test_baseline_grid_names_and_options():
    arms = baseline_arms()
    assert [a.name for a in arms] == [
        "real + classic", "real + classic + real copies mixup", "real + classic + real copies cutmix",
        "real + classic + TA", "real + classic + TA + real copies mixup", "real + classic + TA + real copies cutmix",
        "real + classic + RA", "real + classic + RA + real copies mixup", "real + classic + RA + real copies cutmix",
    ]  # fmt: skip
    by_name = {a.name: a for a in arms}
    ta_cutmix = by_name["real + classic + TA + real copies cutmix"]
    assert ta_cutmix.policy == "trivial" and ta_cutmix.classic and ta_cutmix.source is real_copies
    assert (ta_cutmix.mix_mode, ta_cutmix.mix_alpha, ta_cutmix.ratio) == ("cutmix", 1.0, 0.5)
    assert ta_cutmix.against == "real + classic + TA"
    assert policy_arm("RA", label_smoothing=0.1).name == "real + classic + RA + LS 0.1"


def test_synthetic_arms_pair_each_mix_with_its_real_copies_control(digits_bank):
    arms = synthetic_arms("ddpm", digits_bank, policy_arm("TA"))
    names = [a.name for a in arms]
    assert names == ["real + classic + TA + ddpm", "real + classic + TA + ddpm mixup", "real + classic + TA + real copies mixup",
                     "real + classic + TA + ddpm cutmix", "real + classic + TA + real copies cutmix"]  # fmt: skip
    assert all(a.policy == "trivial" and a.against == "real + classic + TA" for a in arms)
    assert mixed_arm(policy_arm("TA"), "ddpm", digits_bank, "mixup") == arms[1]
    with pytest.raises(ValueError, match="must be real-only without batch mixing"):
        synthetic_arms("ddpm", digits_bank, arms[2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"policy": "autoaugment"}, "unknown augmentation policy 'autoaugment'"),
     ({"label_smoothing": 1.0}, r"label_smoothing must be a number in \[0, 1\)"),
     ({"label_smoothing": -0.1}, r"label_smoothing must be a number in \[0, 1\)"),
     ({"cutmix_alpha": float("nan")}, "cutmix_alpha must be a finite number"),
     ({"cutmix_alpha": 1.0, "mixup_alpha": 0.2}, "not both"),
     ({"source": "x", "ratio": 0.5, "mix_alpha": 0.4, "mix_mode": "blend"}, "mix_mode must be 'mixup' or 'cutmix'")],
)  # fmt: skip
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Arm("x", **kwargs)


def test_new_options_at_their_defaults_keep_cache_keys():
    assert set(Arm("real").options()).isdisjoint({"policy", "label_smoothing", "cutmix_alpha", "mix_mode"})
    assert Arm("x", policy="trivial").options()["policy"] == "trivial"


def test_policies_reach_real_and_synthetic_images(train_test, digits_bank, monkeypatch):
    """The policy goes to train_classifier (every batch's images) and, for a mixing arm, to the samples it draws."""
    train, test = train_test
    calls = []
    real_train = runner.train_classifier

    def spy(dataset, **kwargs):
        calls.append(kwargs)
        return real_train(dataset, **{**kwargs, "steps": 2})

    monkeypatch.setattr(runner, "train_classifier", spy)
    base = policy_arm("TA", label_smoothing=0.1)
    arms = [policy_arm("classic"), base, Arm("cut", cutmix_alpha=1.0), *synthetic_arms("bank", digits_bank, base, mixes=("cutmix",), append=False, controls=False)]
    downstream(train, test, arms=arms, sizes=[5], seeds=[0], **FAST)
    by_arm = dict(zip(["real", *[a.name for a in arms]], calls, strict=True))
    assert by_arm["real"]["policy"] is None
    ta = by_arm[base.name]
    assert isinstance(ta["policy"], AugmentPolicy) and ta["policy"].name == "trivial" and ta["label_smoothing"] == 0.1
    assert by_arm["cut"]["cutmix_alpha"] == 1.0
    mix = by_arm[arms[-1].name]["batch_transform"]
    assert mix.mode == "cutmix" and mix.transform is not None and mix.transform.policy.name == "trivial"
    images = digits_bank.images(torch.arange(8))
    assert not torch.equal(mix.transform(images, generator=torch.Generator().manual_seed(0)), images)


def test_grid_end_to_end_is_seeded(train_test):
    train, test = train_test
    arms = [policy_arm("classic"), policy_arm("TA"), *baseline_arms(["RA"], [None, "cutmix"])]
    first = downstream(train, test, arms=arms, sizes=[5], seeds=[0], **FAST)
    again = downstream(train, test, arms=arms, sizes=[5], seeds=[0], **FAST)
    assert [r["accuracy"] for r in first.runs] == [r["accuracy"] for r in again.runs]
    assert all(r["accuracy"] > 0.2 for r in first.runs)


def test_train_classifier_with_cutmix_and_a_policy(train_test):
    from synthaug.classifier import train_classifier

    train, _ = train_test
    state = torch.random.get_rng_state()
    model = train_classifier(train, image_shape=train.image_shape, num_classes=10, steps=5, batch_size=16, cutmix_alpha=1.0,
                             policy=AugmentPolicy("randaugment", seed=0), label_smoothing=0.1)  # fmt: skip
    assert torch.equal(state, torch.random.get_rng_state()) and not model.training
    with pytest.raises(ValueError, match="not both"):
        train_classifier(train, image_shape=train.image_shape, num_classes=10, steps=1, cutmix_alpha=1.0, mixup_alpha=1.0)


def test_long_tailed_arms_with_a_policy(digits_bank):
    from synthaug.evaluation import long_tail_arms, long_tail_baselines

    baselines = long_tail_baselines(policies=["TA"])
    names = {a.name: a for a in baselines}
    assert names["classic + TA + mixup + DRW"].policy == "trivial"
    assert names["classic + TA + mixup + DRW"].against == "classic + mixup + DRW"
    arms = long_tail_arms({"bank": digits_bank}, policies=["TA"])
    on_la = next(a for a in arms if a.name == "classic + TA + logit adjustment + bank 1")
    assert on_la.policy == "trivial" and on_la.logit_adjust == 1.0 and on_la.against == "classic + TA + logit adjustment"
    assert {a.against for a in arms} <= {a.name for a in baselines} | {a.name for a in arms}
    with pytest.raises(ValueError, match="unknown policy 'classic'"):
        long_tail_baselines(policies=["classic"])
