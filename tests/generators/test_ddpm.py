"""Diffusion: sampler mathematics against a known answer, guidance batching, EMA, and bad input."""

import pytest
import torch

import synthaug
from synthaug.generators import create
from synthaug.generators.diffusion import SOLVERS, NoiseSchedule
from synthaug.generators.diffusion.solvers import DDIMSolver
from tests.conftest import QUIET, TINY_VP


def _gaussian_run(sampler, schedule, steps, std, generator):
    """Sample data x0 ~ N(0, std^2) with the exact posterior mean E[x0 | x_t] as the 'network'."""
    x = torch.randn((20_000, 1), generator=generator, dtype=torch.float64)
    timesteps = schedule.spaced(steps, sampler.spacing)
    for i, t in enumerate(timesteps):
        s = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.tensor([t])))
        x0 = alpha * std**2 / (alpha**2 * std**2 + sigma**2) * x
        eps = (x - alpha * x0) / sigma
        x = sampler.step(x0, eps, t, s, x, generator)
    return x


@pytest.mark.parametrize(("name", "steps"), [("dpm++2m", 10), ("dpm++2m", 20), ("ddim", 50), ("ddpm", 250)])
def test_samplers_reproduce_a_gaussian(name, steps):
    schedule = NoiseSchedule(1000)
    sampler = DDIMSolver(schedule, eta=0.0) if name == "ddim" else SOLVERS[name](schedule)
    samples = _gaussian_run(sampler, schedule, steps, std=0.5, generator=torch.Generator().manual_seed(0))
    # 5%: the discretisation error of few steps on a 1000-step grid (a wrong update is off by 30% or more)
    assert float(samples.std()) == pytest.approx(0.5, rel=0.05)
    assert abs(float(samples.mean())) < 0.02


def test_dpm_solver_is_second_order():
    """Halving the step size divides the error by about four, against the exact ODE solution."""
    schedule, std = NoiseSchedule(1000), 0.5
    alpha_T, sigma_T = (float(v) for v in schedule.alpha_sigma(torch.tensor([999])))
    exact = std / (alpha_T**2 * std**2 + sigma_T**2) ** 0.5  # x_T = 1 flows to this clean value

    def error(steps):
        x, timesteps, sampler = torch.ones(1, 1, dtype=torch.float64), schedule.spaced(steps), SOLVERS["dpm++2m"](schedule)
        for i, t in enumerate(timesteps):
            s = timesteps[i + 1] if i + 1 < len(timesteps) else -1
            alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.tensor([t])))
            x0 = alpha * std**2 / (alpha**2 * std**2 + sigma**2) * x
            x = sampler.step(x0, (x - alpha * x0) / sigma, t, s, x, None)
        return abs(float(x) - exact)

    assert 3.0 < error(40) / error(80) < 5.0 and 3.0 < error(80) / error(160) < 5.0


def test_ddim_is_deterministic_and_eta_adds_noise():
    schedule = NoiseSchedule(1000)
    runs = [_gaussian_run(DDIMSolver(schedule, eta=eta), schedule, 20, 0.5, torch.Generator().manual_seed(s))
            for eta, s in ((0.0, 1), (0.0, 1), (1.0, 1))]  # fmt: skip
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_guidance_runs_both_passes_as_one_batch():
    ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), **TINY_VP)
    batches = []
    ddpm.ema.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    ddpm.sample([0, 1, 2], steps=4, guidance=3.0)
    assert batches == [6] * 4
    batches.clear()
    ddpm.sample([0, 1, 2], steps=4, guidance=1.0)  # conditional only
    assert batches == [3] * 4


@pytest.mark.parametrize("sampler", sorted(SOLVERS))
def test_every_sampler_through_the_model(sampler):
    ddpm = create("ddpm", num_classes=3, image_shape=(3, 16, 16), **TINY_VP)
    a = ddpm.sample([0, 2], sampler=sampler, steps=5, generator=torch.Generator().manual_seed(0))
    b = ddpm.sample([0, 2], sampler=sampler, steps=5, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b) and a.abs().max() <= 1


def test_training_updates_the_ema_weights(digits, tmp_path):
    gen = synthaug.fit(digits.subset(5, seed=0), "ddpm", out=tmp_path, max_steps=3, batch_size=25, **QUIET, **TINY_VP)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # fit initialises from seed 0 the same way
        initial = create("ddpm", num_classes=10, image_shape=(1, 8, 8), class_names=list("0123456789"), **TINY_VP)
    assert torch.equal(initial.unet.stem.weight, initial.ema.stem.weight)
    assert not torch.equal(gen.ema.stem.weight, initial.ema.stem.weight), "the EMA must follow training"
    assert not torch.equal(gen.ema.stem.weight, gen.unet.stem.weight), "and lag behind the live weights"
    assert all(not p.requires_grad for p in gen.ema.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"sampler": "euler"}, r"unknown sampler 'euler'; known samplers: \['ddim', 'ddpm', 'dpm\+\+2m'\]"),
     ({"steps": 0}, r"steps must lie in \[1, 50\]"), ({"steps": 51}, r"steps must lie in \[1, 50\]"),
     ({"guidance": -1.0}, r"guidance must lie in \[0, 20\]"), ({"guidance": 25.0}, "guidance must lie"),
     ({"eta": -0.5}, "eta must be >= 0")],
)  # fmt: skip
def test_bad_sampling_options(kwargs, match):
    ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), **TINY_VP)
    with pytest.raises(ValueError, match=match):
        ddpm.sample([0], **kwargs)


def test_image_size_the_unet_cannot_halve():
    with pytest.raises(ValueError, match=r"divisible by 4; 10x10 is not. Sizes that work: 8, 12, 16"):
        create("ddpm", num_classes=3, image_shape=(1, 10, 10), channel_mults=(1, 2, 2))


def test_patch_size_is_picked_by_image_size_and_checked():
    assert create("ddpm", num_classes=3, image_shape=(1, 28, 28)).config.patch_size == 2
    assert create("ddpm", num_classes=3, image_shape=(1, 8, 8), base_channels=8).config.patch_size == 1
    ddpm = create("ddpm", num_classes=3, image_shape=(3, 16, 16), base_channels=8, patch_size=2)
    assert ddpm.sample([0, 2], steps=2, generator=torch.Generator().manual_seed(0)).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"patch_size 2 and a UNet with 2 levels divide images by 4.*30x30 is not"):
        create("ddpm", num_classes=3, image_shape=(1, 30, 30))
