"""Compression: structured pruning really shrinks the network, distillation samples in a few steps, both load."""

import pytest
import torch

import synthaug
from synthaug.compress import compress, distill, parameters, prune_weights, pruned_widths
from synthaug.generators import create
from tests.conftest import QUIET, TINY

#: the v-prediction ddpm (its distillation spaces steps by log-SNR); the EDM default's compression is in test_ddpm_edm
TINY_DDPM = {**TINY["ddpm"], "base_channels": 16, "parameterization": "vp"}


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    return synthaug.fit(digits.subset(20, seed=0), "ddpm", out=out, max_steps=30, batch_size=50, **QUIET, **TINY_DDPM)


def test_pruning_removes_channels_and_keeps_the_function_close(teacher):
    pruned = prune_weights(teacher, 0.5)
    halves = tuple(b.conv1.out_channels // 2 for b in teacher.ema.blocks())
    assert pruned.config.block_widths == halves and set(halves) == {8, 16}
    assert parameters(pruned) < 0.75 * parameters(teacher)
    assert [(b.conv1.out_channels, b.conv2.in_channels) for b in pruned.ema.blocks()] == [(w, w) for w in halves]
    x, labels = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3])
    t = torch.full((4,), 25)
    full, small = teacher.ema(x, t, labels), pruned.ema(x, t, labels)
    assert small.shape == full.shape and (small - full).norm() < full.norm()  # the kept channels carry most of it


def test_prune_then_fine_tune_saves_a_loadable_generator(teacher, digits, tmp_path):
    pruned = compress(teacher, digits.subset(20, seed=0), method="prune", ratio=0.5, prune_steps=3, out=tmp_path, enable_progress_bar=False)
    loaded = synthaug.load(tmp_path / "generator")
    assert loaded.config.block_widths == pruned.config.block_widths and parameters(loaded) < parameters(teacher)
    assert loaded.sample([1, 2], generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)


def test_distilled_student_samples_in_few_steps_and_learns(teacher, tmp_path):
    student = distill(teacher, student_steps=2, substeps=3, steps=20, batch_size=16, out=tmp_path, enable_progress_bar=False)
    loaded = synthaug.load(tmp_path / "generator")
    assert (loaded.config.sampler, loaded.config.steps, loaded.config.spacing) == ("ddim", 2, "logsnr")
    calls = []
    original = loaded.ema.forward
    loaded.ema.forward = lambda *a: calls.append(1) or original(*a)
    loaded.sample([0, 1, 2], generator=torch.Generator().manual_seed(0))
    assert len(calls) == 2  # two network passes, against the teacher's ten
    assert not all(torch.equal(a, b) for a, b in zip(student.unet.state_dict().values(), teacher.ema.state_dict().values()))


@pytest.mark.parametrize(
    ("call", "match"),
    [(lambda t, d: compress(t, d, method="prune", ratio=1.0), r"ratio must be a finite number > 0 and < 1, got 1.0"),
     (lambda t, d: compress(t, d, method="prune", ratio=0.0), r"ratio must be a finite number > 0 and < 1, got 0.0"),
     (lambda t, d: compress(t, d, method="shrink"), "method must be one of"),
     (lambda t, d: distill(create("vae", num_classes=10, image_shape=(1, 8, 8))), "family 'vae'"),
     (lambda t, d: distill(t, student_steps=8), r"student_steps must lie in \[1, 4\]"),
     (lambda t, d: pruned_widths(create("ddpm", num_classes=3, image_shape=(1, 8, 8), base_channels=16), 0.8),
      "valid ratios here are below 0.75"),
     (lambda t, d: compress(t, None, method="prune"), "pass data=")],
)  # fmt: skip
def test_bad_compression_requests(teacher, digits, call, match):
    with pytest.raises(ValueError, match=match):
        call(teacher, digits.subset(5, seed=0))


def test_a_distilled_generator_feeds_synthetic_augment_live_in_two_workers(teacher, digits, tmp_path):
    from torch.utils.data import DataLoader

    from synthaug import SyntheticAugment

    student = distill(teacher, student_steps=1, substeps=2, steps=2, batch_size=8, out=tmp_path, enable_progress_bar=False)
    real = digits.subset(6, seed=0)
    augmented = SyntheticAugment(real, student, ratio=0.5, seed=0)
    batches = [list(DataLoader(augmented, batch_size=16, sampler=augmented.sampler(seed=0), num_workers=w)) for w in (0, 2)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(*batches))
    assert sum(len(labels) for _, labels in batches[1]) == 90
