"""The vae's augmentation-conditioned training (``augment_p``): the ddpm's non-leaking augmentation on a vae."""

import pytest
import torch
import torch.nn.functional as F

import synthaug
from synthaug.generators import create
from synthaug.generators.vae import ConditionalVAE
from tests.conftest import QUIET, TINY_VAE


def _same(a, b):
    return a.state_dict().keys() == b.state_dict().keys() and all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )


@pytest.fixture(scope="module")
def small(digits):
    return digits.subset(5, seed=0)  # 50 images: 2 batches of 25 per epoch


def _pre_option_loss(self, images, labels, *, generator=None):
    """The vae loss as written before augmentation existed (synthaug 0.2), for the bit-identity test."""
    features = self.encoder(images).flatten(1)
    mean, logvar = self.to_posterior(torch.cat([features, self.encoder_embed(labels)], dim=1)).chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    z = mean + eps * torch.exp(0.5 * logvar)
    h = self.from_latent(torch.cat([z, self.decoder_embed(labels)], dim=1))
    logits = self.decoder(h.view(-1, *self.bottom_shape))
    recon = F.binary_cross_entropy_with_logits(logits, (images + 1.0) / 2.0, reduction="none").flatten(1).sum(1).mean()
    kl_per_dim = (0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)).mean(0)
    penalty = kl_per_dim.clamp(min=self.config.free_bits).sum()
    return {"loss": recon + self.config.beta * penalty, "recon": recon, "kl": kl_per_dim.sum()}


def test_augment_p_zero_trains_bit_identically_to_no_augmentation(small, tmp_path, monkeypatch):
    opts = {"max_steps": 4, "batch_size": 25, **QUIET, **TINY_VAE}
    with_option = synthaug.fit(small, "vae", out=tmp_path / "a", augment_p=0.0, **opts)
    assert with_option.augment_embed is None
    monkeypatch.setattr(ConditionalVAE, "loss", _pre_option_loss)
    without = synthaug.fit(small, "vae", out=tmp_path / "b", **opts)
    assert _same(with_option, without)


def test_augmented_training_changes_the_run_and_is_reproducible(small, tmp_path):
    opts = {"max_steps": 4, "batch_size": 25, **QUIET, **TINY_VAE}
    plain = synthaug.fit(small, "vae", out=tmp_path / "plain", **opts)
    a = synthaug.fit(small, "vae", out=tmp_path / "a", augment_p=0.5, **opts)
    b = synthaug.fit(small, "vae", out=tmp_path / "b", augment_p=0.5, **opts)
    assert _same(a, b)  # every augmentation draw comes from the run's seeded generator
    assert a.augment_embed is not None and a.augment_embed.weight.abs().sum() > 0  # trained
    shared = {k: v for k, v in a.state_dict().items() if not k.startswith("augment_embed")}
    assert shared.keys() == plain.state_dict().keys()
    assert any(not torch.equal(v, plain.state_dict()[k]) for k, v in shared.items())


def test_sampling_never_sees_a_nonzero_augmentation_label():
    vae = create("vae", num_classes=3, image_shape=(1, 8, 8), augment_p=0.5, **TINY_VAE)
    seen = {"train": [], "sample": []}
    phase = ["train"]
    vae.augment_embed.register_forward_pre_hook(lambda module, args: seen[phase[0]].append(args[0].clone()))
    decoded = []
    vae.decoder.register_forward_pre_hook(lambda module, args: decoded.append(phase[0]))
    images, labels = torch.rand((16, 1, 8, 8)) * 2 - 1, torch.arange(16) % 3
    vae.train().loss(images, labels, generator=torch.Generator().manual_seed(0))
    assert any(v.abs().sum() > 0 for v in seen["train"]), "training must see the augmentations"
    phase[0] = "sample"
    vae.eval().sample([0, 1, 2], generator=torch.Generator().manual_seed(0))
    assert "sample" in decoded  # the decoder ran, with no augmentation input at all (zeros)
    assert all(torch.count_nonzero(v) == 0 for v in seen["sample"])


def test_save_load_round_trip(small, tmp_path):
    vae = synthaug.fit(small, "vae", out=tmp_path / "run", max_steps=2, batch_size=25, augment_p=0.3,
                       augmentations=("xflip", "translate"), **QUIET, **TINY_VAE)  # fmt: skip
    loaded = synthaug.load(tmp_path / "run" / "generator")
    assert loaded.config.augment_p == 0.3 and loaded.config.augmentations == ("xflip", "translate")
    assert _same(vae, loaded)
    a = vae.sample([0, 1, 2], generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, loaded.sample([0, 1, 2], generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize(
    ("options", "match"),
    [({"augment_p": 1.0}, r"augment_p must lie in \[0, 1\) .*got 1.0"),
     ({"augment_p": -0.2}, r"augment_p must lie in \[0, 1\) .*got -0.2"),
     ({"augment_p": 0.1, "augmentations": ("xflip", "cutout")}, r"unknown augmentation\(s\) \['cutout'\]; choose from")],
)  # fmt: skip
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        create("vae", num_classes=3, image_shape=(1, 8, 8), **TINY_VAE, **options)


def test_rot90_needs_square_images():
    with pytest.raises(ValueError, match=r"rot90 needs square images, these are 8x12"):
        create("vae", num_classes=3, image_shape=(1, 8, 12), augment_p=0.1, **TINY_VAE)
    create("vae", num_classes=3, image_shape=(1, 8, 12), augment_p=0.1, augmentations=("xflip",), **TINY_VAE)
