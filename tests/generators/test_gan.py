"""The GAN: DiffAugment, the manual optimisation step through Lightning, EMA, and resume checks."""

import glob

import pytest
import torch

import synthaug
from synthaug.generators import create
from synthaug.generators.diffaugment import cutout, diff_augment, translation
from tests.conftest import QUIET, TINY_GAN


def test_diffaugment_is_seeded_shape_preserving_and_differentiable(digits):
    x = (digits.images[:16].float() / 127.5 - 1).requires_grad_()
    a = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    b = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_and_cutout_masks(digits):
    x = digits.images[:64].float() / 255
    moved = translation(x, torch.Generator().manual_seed(1))
    assert not torch.equal(moved, x) and moved.sum() <= x.sum() + 1e-4  # shifted, zeros coming in
    masked = cutout(torch.ones(8, 1, 8, 8), torch.Generator().manual_seed(1))
    zeros = (masked == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 16).all()  # a square of half the side, clipped at the border


def test_training_steps_both_networks_and_the_ema(digits, tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(0)  # fit initialises from seed 0 the same way
        initial = create("gan", num_classes=10, image_shape=(1, 8, 8), class_names=list("0123456789"), **TINY_GAN)
    gan = synthaug.fit(digits.subset(10, seed=0), "gan", out=tmp_path, max_steps=4, batch_size=20, **QUIET, **TINY_GAN)
    for name in ("generator_network.project.weight", "discriminator.linear.parametrizations.weight.original", "ema.project.weight"):
        assert not torch.equal(gan.state_dict()[name], initial.state_dict()[name]), name
    assert not torch.equal(gan.ema.project.weight, gan.generator_network.project.weight)


def test_resume_with_another_discriminator_is_refused(digits, tmp_path):
    data = digits.subset(10, seed=0)
    synthaug.fit(data, "gan", out=tmp_path, max_steps=2, batch_size=20, **QUIET, **TINY_GAN)
    (checkpoint,) = glob.glob(str(tmp_path / "checkpoints" / "last.ckpt"))
    wider = {**TINY_GAN, "discriminator_channels": 16}
    with pytest.raises(ValueError, match=r"discriminator_channels: 8 -> 16.*resume with the options it was trained with"):
        synthaug.fit(data, "gan", out=tmp_path / "again", max_steps=4, batch_size=20, ckpt_path=checkpoint, **QUIET, **wider)


def test_unknown_diffaugment_policy():
    with pytest.raises(ValueError, match=r"unknown DiffAugment policies \['rotate'\]"):
        create("gan", num_classes=3, image_shape=(1, 8, 8), diffaugment="color,rotate")


def test_minibatch_std_channel():
    from synthaug.generators.gan import ProjectionDiscriminator

    h = torch.randn(6, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    out = ProjectionDiscriminator._minibatch_std(h)  # 6 samples: groups of 3 (the largest divisor <= 4)
    assert out.shape == (6, 4, 2, 2) and torch.equal(out[:, :3], h)
    groups = h.view(3, 2, 3, 2, 2)  # sample i is in group i % 2
    expected = groups.var(0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    assert torch.allclose(out[:, 3, 0, 0], expected.repeat(3))
    assert torch.allclose(ProjectionDiscriminator._minibatch_std(torch.ones(1, 2, 2, 2))[:, 2], torch.full((1, 2, 2), 1e-4))


@pytest.mark.parametrize("weight", [0.0, 0.1])
def test_mode_seeking_term(digits, weight):
    gan = create("gan", num_classes=10, image_shape=(1, 8, 8), mode_seeking=weight, **TINY_GAN)
    images, labels = digits.images[:8].float() / 127.5 - 1, digits.labels[:8]
    logged = gan.manual_step(images, labels, gan.configure_optimizers(1e-3), lambda loss: loss.backward(),
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert ("mode_seeking" in logged) == (weight > 0)
    if weight:
        assert logged["mode_seeking"] > 0
    with pytest.raises(ValueError, match="mode_seeking must be >= 0"):
        create("gan", num_classes=3, image_shape=(1, 8, 8), mode_seeking=-1.0)
