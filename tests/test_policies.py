"""Augmentation policies (TrivialAugment, RandAugment through kornia) and CutMix, on real digits."""

import pytest
import torch

from synthaug.mixup import cutmix, cutmix_boxes
from synthaug.policies import AugmentPolicy, make_policy

pytest.importorskip("kornia")


def _batch(digits, n=32):
    return digits.images[:n], digits.labels[:n]


@pytest.mark.parametrize("name", ["trivial", "randaugment"])
def test_policy_keeps_dtype_shape_and_is_seeded(digits, name):
    images, _ = _batch(digits)
    policy = AugmentPolicy(name, seed=0)
    a = policy(images, generator=torch.Generator().manual_seed(5))
    b = policy(images, generator=torch.Generator().manual_seed(5))
    c = policy(images, generator=torch.Generator().manual_seed(6))
    assert a.dtype == torch.uint8 and a.shape == images.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, images)


def test_policy_draws_per_image_and_leaves_the_global_rng_alone(digits):
    images, _ = _batch(digits, 64)
    policy = AugmentPolicy("trivial", seed=0)
    params = policy.draw_params(64, torch.Generator().manual_seed(0))
    assert params["ops"].shape == (64, 1) and len(params["ops"].unique()) > 5  # not one op for the whole batch
    state = torch.random.get_rng_state()
    policy.apply(images, params)
    assert torch.equal(state, torch.random.get_rng_state())
    # an image that drew the identity comes back unchanged; one that drew an operation does not (mostly)
    out = policy.apply(images, params)
    identity = params["ops"][:, 0] == policy.operations.index("identity")
    assert identity.any() and torch.equal(out[identity], images[identity])


def test_randaugment_draws_distinct_operations_per_image():
    policy = AugmentPolicy("randaugment", num_ops=3, magnitude=9)
    ops = policy.draw_params(200, torch.Generator().manual_seed(0))["ops"]
    assert ops.shape == (200, 3) and all(len(set(row.tolist())) == 3 for row in ops)


def test_policy_on_floats_and_normalised_batches(digits):
    images, _ = _batch(digits, 16)
    unit = images.float() / 255
    policy = AugmentPolicy("trivial", seed=1)
    g = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    out = policy(unit, generator=g())
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert torch.allclose(out, policy(images, generator=g()).float() / 255, atol=1 / 255 + 1e-6)
    mean, std = [0.5], [0.25]
    normalised = AugmentPolicy("trivial", seed=1, normalize=(mean, std))
    out_n = normalised((unit - 0.5) / 0.25, generator=g())
    assert torch.allclose(out_n * 0.25 + 0.5, out, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\].*normalize"):
        policy(unit * 2 - 1)


def test_policy_on_colour_images():
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = AugmentPolicy("randaugment", num_ops=4, seed=0)(images)
    assert out.shape == images.shape and out.dtype == torch.uint8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"name": "autoaugmentt"}, "unknown augmentation policy 'autoaugmentt'"),
     ({"name": "randaugment", "magnitude": 31}, r"magnitude must be a number in \(0, 30\)"),
     ({"name": "randaugment", "magnitude": "9"}, "magnitude must be a number"),
     ({"name": "randaugment", "num_ops": 0}, r"num_ops must be an integer in \[1, 15\]")],
)  # fmt: skip
def test_policy_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AugmentPolicy(**kwargs)


def test_make_policy():
    assert make_policy(None) is None and make_policy("trivial").name == "trivial"
    with pytest.raises(TypeError, match="a policy is a name"):
        make_policy(3)


def test_cutmix_pastes_a_box_and_weights_labels_by_area():
    rng = torch.Generator().manual_seed(0)
    a, b = torch.zeros(16, 1, 10, 10), torch.ones(16, 1, 10, 10)
    ta, tb = torch.nn.functional.one_hot(torch.zeros(16, dtype=torch.long), 3).float(), torch.eye(3)[torch.ones(16, dtype=torch.long)]
    lam = torch.full((16,), 0.75)
    boxes, kept = cutmix_boxes(lam, 10, 10, rng)
    mixed, targets = cutmix(a, ta, b, tb, boxes, kept)
    pasted = mixed.mean(dim=(1, 2, 3))
    assert torch.allclose(pasted, 1 - kept)  # the pasted share is exactly what the labels say
    assert torch.allclose(targets[:, 0], kept) and torch.allclose(targets[:, 1], 1 - kept)
    assert (kept >= 0.75 - 1e-6).all() and (kept < 1).any()  # clipped boxes only keep more


def test_cutmix_rejects_images_of_other_sizes():
    with pytest.raises(ValueError, match="CutMix pastes between images of one size"):
        boxes, kept = cutmix_boxes(torch.full((2,), 0.5), 8, 8, torch.Generator())
        cutmix(torch.zeros(2, 1, 8, 8), torch.zeros(2, 3), torch.zeros(2, 1, 9, 9), torch.zeros(2, 3), boxes, kept)
