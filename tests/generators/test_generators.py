"""The generator interface, run for every registered family with a tiny config."""

import pytest
import torch

from synthaug.generators import GENERATORS, create
from tests.conftest import TINY

FAMILIES = sorted(GENERATORS)
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 12, 20)]


def test_every_family_has_a_tiny_test_config():
    assert set(TINY) == set(GENERATORS)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_sample_shape_and_range(family, shape, rng):
    gen = create(family, num_classes=3, image_shape=shape, **TINY[family])
    images = gen.sample(torch.tensor([0, 1, 2, 2]), generator=rng)
    assert images.shape == (4, *shape) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_loss_is_finite_and_reaches_every_parameter(family, shape, rng):
    gen = create(family, num_classes=3, image_shape=shape, **TINY[family])
    images = torch.rand((6, *shape), generator=rng) * 2 - 1
    losses = gen.loss(images, torch.tensor([0, 1, 2, 0, 1, 2]), generator=rng)
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert all(p.grad is not None for p in gen.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", FAMILIES)
def test_sampling_is_reproducible_and_leaves_the_global_rng_alone(family):
    gen = create(family, num_classes=3, image_shape=(1, 8, 8), **TINY[family])
    state = torch.get_rng_state()
    a = gen.sample([0, 1, 2], generator=torch.Generator().manual_seed(5))
    b = gen.sample([0, 1, 2], generator=torch.Generator().manual_seed(5))
    c = gen.sample([0, 1, 2], generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("labels", [[0, 3], [-1], [1.5]])
def test_sampling_classes_it_was_not_trained_on(family, labels):
    gen = create(family, num_classes=3, image_shape=(1, 8, 8), class_names=["a", "b", "c"], **TINY[family])
    with pytest.raises(ValueError, match=r"trained on classes 0..2 \['a', 'b', 'c'\]|integer class indices"):
        gen.sample(labels)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown generator family 'stylegan'; known families: \['ar', 'ddpm', 'gan', 'vae'"):
        create("stylegan", num_classes=3, image_shape=(1, 8, 8))


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"unknown VAEConfig option\(s\) \['latent'\]; valid options are .*latent_dim"):
        create("vae", num_classes=3, image_shape=(1, 8, 8), latent=4)


@pytest.mark.parametrize("family", FAMILIES)
def test_fit_save_load_and_bank(family, digits, tmp_path):
    """Every family goes through the same fit / save / load / bank path."""
    import synthaug
    from synthaug.bank import SyntheticBank

    small = digits.subset(10, seed=0)
    gen = synthaug.fit(small, family, out=tmp_path, max_steps=3, batch_size=20, enable_progress_bar=False, logger=False, **TINY[family])
    loaded = synthaug.load(tmp_path / "generator")
    bank = SyntheticBank.generate(loaded, path=tmp_path / "bank", per_class=2)
    assert type(loaded) is type(gen) and len(bank) == 20 and bank.image_shape == (1, 8, 8)


@pytest.mark.parametrize("shape", [(2, 8, 8), (1, 2, 2)])
def test_unsupported_image_shape(shape):
    with pytest.raises(ValueError, match="image_shape must be|at least 4x4"):
        create("vae", num_classes=3, image_shape=shape)
