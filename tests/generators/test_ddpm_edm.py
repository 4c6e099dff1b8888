"""EDM (preconditioning, noise distribution, samplers), augmentation-conditioned training and the size ladder of the ddpm."""

import glob
import json
import math

import pytest
import torch

import synthaug
from synthaug.generators import create
from synthaug.generators.ddpm import SIZES, ConditionalDDPM
from synthaug.generators.diffusion.augment import AUGMENT_DIM, TRANSLATE_MAX, augment
from synthaug.generators.diffusion.edm import EDMPreconditioning, karras_sigmas
from synthaug.generators.diffusion.solvers.edm import EDM_SOLVERS, solve_edm
from tests.conftest import QUIET, TINY_DDPM, TINY_VP

EDM = {**TINY_DDPM, "parameterization": "edm"}


def _same(a, b):
    return a.state_dict().keys() == b.state_dict().keys() and all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )


# --- EDM's formulas --------------------------------------------------------------------------------------------


def test_preconditioning_is_the_papers_table_1():
    sigma, sd = torch.tensor([0.002, 0.1, 0.5, 3.0, 80.0], dtype=torch.float64), 0.5
    c_skip, c_out, c_in, c_noise = EDMPreconditioning(sd).scalings(sigma)
    for sigma_i, skip, out, inp, noise in zip(sigma.tolist(), c_skip, c_out, c_in, c_noise):
        assert float(skip) == pytest.approx(sd**2 / (sigma_i**2 + sd**2))
        assert float(out) == pytest.approx(sigma_i * sd / math.sqrt(sigma_i**2 + sd**2))
        assert float(inp) == pytest.approx(1 / math.sqrt(sigma_i**2 + sd**2))
        assert float(noise) == pytest.approx(math.log(sigma_i) / 4)
    # the loss weight makes the loss on the raw network unit-weighted: lambda(sigma) * c_out^2 = 1
    torch.testing.assert_close(EDMPreconditioning(sd).loss_weight(sigma) * c_out.square(), torch.ones_like(sigma))


def test_karras_sigmas():
    sigmas = karras_sigmas(18)
    assert len(sigmas) == 19 and sigmas[-1] == 0.0
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-2] == pytest.approx(0.002)
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    # evenly spaced in sigma^(1/rho)
    roots = torch.tensor(sigmas[:-1], dtype=torch.float64) ** (1 / 7)
    torch.testing.assert_close(roots.diff(), roots.diff()[:1].expand(17))
    assert karras_sigmas(1) == [80.0, 0.0]


def _gaussian_denoiser(std):
    """The exact denoiser E[y | y + sigma n = x] for data y ~ N(0, std^2)."""
    return lambda x, sigma: std**2 / (std**2 + sigma**2) * x


@pytest.mark.parametrize(("sampler", "steps"), [("heun", 32), ("dpm++2m", 32), ("ddim", 150), ("ddpm", 150)])
def test_edm_samplers_reproduce_a_gaussian(sampler, steps):
    rng = torch.Generator().manual_seed(0)
    sigmas = karras_sigmas(steps)
    x = torch.randn((20_000, 1), generator=rng, dtype=torch.float64) * math.sqrt(sigmas[0] ** 2 + 0.25)
    samples = solve_edm(_gaussian_denoiser(0.5), x, sigmas, sampler, generator=rng)
    assert float(samples.std()) == pytest.approx(0.5, rel=0.05)
    assert abs(float(samples.mean())) < 0.02


@pytest.mark.parametrize(("sampler", "order"), [("heun", 2), ("dpm++2m", 2), ("ddim", 1)])
def test_edm_solver_orders(sampler, order):
    """Against the exact ODE solution x(0) = x(sigma_max) * std / sqrt(std^2 + sigma_max^2): doubling the steps divides
    the error by about 2^order."""
    std = 0.5

    def error(steps):
        sigmas = karras_sigmas(steps)
        x = torch.full((1,), sigmas[0], dtype=torch.float64)
        exact = sigmas[0] * std / math.sqrt(std**2 + sigmas[0] ** 2)
        return abs(float(solve_edm(_gaussian_denoiser(std), x, sigmas, sampler)) - exact)

    ratios = [error(n) / error(2 * n) for n in (10, 20)]
    assert all(0.75 * 2**order < r < 1.4 * 2**order for r in ratios), ratios


def test_heun_evaluates_twice_per_step_but_once_on_the_last():
    calls = []
    solve_edm(lambda x, sigma: calls.append(sigma) or 0 * x, torch.ones(1), karras_sigmas(5), "heun")
    assert len(calls) == 2 * 5 - 1


def test_heun_churn_adds_noise_reproducibly():
    sigmas, x = karras_sigmas(8), torch.ones(4, 1)
    runs = [solve_edm(_gaussian_denoiser(0.5), x, sigmas, "heun", churn=c, generator=torch.Generator().manual_seed(1))
            for c in (0.0, 0.0, 10.0, 10.0)]  # fmt: skip
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[2], runs[3]) and not torch.equal(runs[0], runs[2])


# --- EDM through the model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", sorted(EDM_SOLVERS))
def test_every_edm_sampler_through_the_model(sampler):
    ddpm = create("ddpm", num_classes=3, image_shape=(3, 16, 16), **EDM)
    a = ddpm.sample([0, 2], sampler=sampler, steps=4, generator=torch.Generator().manual_seed(0))
    b = ddpm.sample([0, 2], sampler=sampler, steps=4, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b) and a.abs().max() <= 1


def test_edm_guidance_runs_both_passes_as_one_batch_and_churn_is_an_option():
    ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), **EDM)
    assert {"steps", "guidance", "sampler", "eta", "churn"} <= set(ddpm.sample_defaults())
    batches = []
    ddpm.ema.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    ddpm.sample([0, 1, 2], steps=4, guidance=3.0, sampler="heun")
    assert batches == [6] * 7
    batches.clear()
    ddpm.sample([0, 1, 2], steps=4, guidance=1.0, sampler="dpm++2m", churn=5.0)
    assert batches == [3] * 4


def test_feedback_guidance_works_with_edm():
    ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), **EDM)
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    plain, guided = (ddpm.sample([0, 2], steps=3, generator=torch.Generator().manual_seed(0), **extra)
                     for extra in ({}, {"feedback": classifier, "feedback_scale": 0.5}))  # fmt: skip
    assert guided.shape == (2, 1, 8, 8) and guided.abs().max() <= 1 and not torch.equal(plain, guided)


def test_edm_loss_is_the_papers(rng):
    ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), **EDM).train()
    images, labels = torch.rand((6, 1, 8, 8), generator=rng) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    loss = ddpm.loss(images, labels, generator=torch.Generator().manual_seed(3))["loss"]
    # the same draws, in the same order, through the formulas written out here
    g, sd = torch.Generator().manual_seed(3), 0.5
    sigma = (-1.2 + 1.2 * torch.randn(6, generator=g)).exp()
    noise = torch.randn(images.shape, generator=g)
    drop = torch.rand(6, generator=g) < ddpm.config.label_dropout
    labels = torch.where(drop, 3, labels)
    s = sigma.view(-1, 1, 1, 1)
    x = images + s * noise
    raw = ddpm.unet(x / (s**2 + sd**2).sqrt(), 250 * sigma.log() / 4, labels)
    denoised = sd**2 / (s**2 + sd**2) * x + s * sd / (s**2 + sd**2).sqrt() * raw
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    expected = (weight * (denoised - images).square().flatten(1).mean(1)).mean()
    torch.testing.assert_close(loss, expected)


@pytest.fixture(scope="module")
def small(digits):
    return digits.subset(5, seed=0)  # 50 images: 2 batches of 25 per epoch


@pytest.fixture(scope="module")
def edm_runs(small, tmp_path_factory):
    """6 steps of an augmented EDM in one go, and 3 + a resume of 3 from the mid-run checkpoint."""
    out = tmp_path_factory.mktemp("edm")
    opts = {"max_steps": 6, "batch_size": 25, "augment_p": 0.3, **QUIET, **EDM}
    whole = synthaug.fit(small, "ddpm", out=out / "a", checkpoint_every_n_steps=3, keep_checkpoints=-1, **opts)
    (halfway,) = glob.glob(str(out / "a" / "checkpoints" / "*step=3.ckpt"))
    return whole, synthaug.fit(small, "ddpm", out=out / "b", ckpt_path=halfway, **opts), out


def test_edm_with_augmentation_resumes_exactly_and_round_trips(edm_runs):
    whole, resumed, out = edm_runs
    assert _same(whole.unet, resumed.unet), "the noise levels, noise and augmentations must continue where they stopped"
    loaded = synthaug.load(out / "a" / "generator")
    assert loaded.config.parameterization == "edm" and loaded.config.augment_p == 0.3 and _same(whole, loaded)
    a, b = (g.sample([0, 5, 9], sampler="heun", generator=torch.Generator().manual_seed(0)) for g in (whole, loaded))
    assert torch.equal(a, b)


def test_the_ema_resumes_exactly(edm_runs):
    """The EMA weights move right after the optimiser step, so a mid-run checkpoint holds them up to date."""
    whole, resumed, _ = edm_runs
    assert _same(whole.ema, resumed.ema)


def test_a_checkpoint_of_one_parameterization_is_not_resumed_as_another(small, tmp_path):
    opts = {"max_steps": 2, "batch_size": 25, **QUIET, **TINY_VP}
    synthaug.fit(small, "ddpm", out=tmp_path, **{**opts, "parameterization": "edm"})
    with pytest.raises(ValueError, match=r"parameterization: 'edm' -> 'vp'.*resume with the options it was trained with"):
        synthaug.fit(small, "ddpm", out=tmp_path, ckpt_path="last", **{**opts, "max_steps": 4})


def test_a_checkpoint_from_before_the_new_options_still_resumes(small, tmp_path):
    opts = {"batch_size": 25, **QUIET, **TINY_VP}
    synthaug.fit(small, "ddpm", out=tmp_path / "a", max_steps=2, **opts)
    checkpoint = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    new = ("size", "parameterization", "sigma_data", "p_mean", "p_std", "sigma_min", "sigma_max", "rho", "churn",
           "augment_p", "augmentations")  # fmt: skip
    for key in new:  # as synthaug 0.2 wrote it
        del checkpoint["hyper_parameters"]["config"][key]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    resumed = synthaug.fit(small, "ddpm", out=tmp_path / "b", max_steps=3, ckpt_path=tmp_path / "old.ckpt", **opts)
    assert resumed.config.parameterization == "vp"


def test_edm_is_the_default_and_a_save_from_before_loads_as_the_vp_it_trained(small, tmp_path):
    from synthaug.training import describe_stale, stale_options

    assert create("ddpm", num_classes=3, image_shape=(1, 8, 8), **TINY_DDPM).config.parameterization == "edm"
    vp = synthaug.fit(small, "ddpm", out=tmp_path, max_steps=2, batch_size=25, **QUIET, **TINY_VP)
    config = tmp_path / "generator" / "config.json"
    meta = json.loads(config.read_text())
    for key in ("parameterization", "sigma_data", "p_mean", "p_std", "sigma_min", "sigma_max", "rho", "churn"):
        del meta["config"][key]  # as synthaug 0.2 wrote it, before EDM existed
    config.write_text(json.dumps(meta))
    loaded = synthaug.load(tmp_path / "generator")
    assert loaded.config.parameterization == "vp"
    draw = lambda g: g.sample([0, 1, 2], generator=torch.Generator().manual_seed(3))  # noqa: E731
    assert torch.equal(draw(loaded), draw(vp))  # read as EDM, the same weights would draw other images
    # a study that reuses a cached generator sees that today's default would train another one
    assert stale_options(loaded, "ddpm", **TINY_DDPM) == {"parameterization": ("vp", "edm")}
    assert stale_options(loaded, "ddpm", **TINY_VP) == {}
    assert describe_stale(stale_options(loaded, "ddpm", **TINY_DDPM)) == "parameterization: 'vp' -> 'edm'"


def test_compressing_an_edm_generator_keeps_it_edm(small, tmp_path):
    from synthaug.compress import distill, prune

    teacher = synthaug.fit(small, "ddpm", out=tmp_path / "t", max_steps=2, batch_size=25, augment_p=0.2, **QUIET,
                           **{**EDM, "base_channels": 16})  # fmt: skip
    pruned = prune(teacher, small, ratio=0.5, steps=2, out=tmp_path / "p", batch_size=25, **QUIET)
    assert pruned.config.parameterization == "edm" and pruned.config.augment_p == 0.2
    assert pruned.sample([1, 2], sampler="heun", steps=3, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)
    student = distill(teacher, student_steps=2, substeps=2, steps=3, batch_size=8, out=tmp_path / "d", enable_progress_bar=False)
    loaded = synthaug.load(tmp_path / "d" / "generator")
    assert (loaded.config.parameterization, loaded.config.sampler, loaded.config.steps) == ("edm", "ddim", 2)
    calls = []
    loaded.ema.register_forward_hook(lambda *args: calls.append(1))
    assert loaded.sample([0, 1, 2], generator=torch.Generator().manual_seed(0)).shape == (3, 1, 8, 8) and len(calls) == 2
    assert not _same(student.unet, teacher.ema), "the student must have trained"


# --- augmentation ----------------------------------------------------------------------------------------------


def _distinct_images(n=64, size=8):
    return torch.arange(n * size * size, dtype=torch.float32).view(n, 1, size, size)


def test_flips_and_rotations_are_what_the_conditioning_says():
    images = _distinct_images()
    out, cond = augment(images, 0.5, generator=torch.Generator().manual_seed(0), kinds=("xflip", "rot90"))
    assert cond.shape == (64, AUGMENT_DIM) and torch.all(cond[:, 4:] == 0)
    for x, y, c in zip(images, out, cond):
        k = int(c[1:4].argmax()) + 1 if c[1:4].any() else 0
        undone = y.rot90(-k, dims=(1, 2))
        undone = undone.flip(2) if c[0] else undone
        assert torch.equal(undone, x)
    flipped, rotated = float(cond[:, 0].mean()), float(cond[:, 1:4].sum(1).mean())
    assert 0.1 < flipped < 0.45 and 0.2 < rotated < 0.6  # p * 1/2 and p * 3/4


def test_translation_is_what_the_conditioning_says():
    images = _distinct_images(32, 16)
    out, cond = augment(images, 0.9, generator=torch.Generator().manual_seed(1), kinds=("translate",))
    limit = TRANSLATE_MAX * 16
    moved = 0
    for x, y, c in zip(images, out, cond):
        dx, dy = round(float(c[4]) * limit), round(float(c[5]) * limit)
        moved += (dx, dy) != (0, 0)
        assert max(abs(dx), abs(dy)) <= round(limit)
        ys, xs = slice(max(dy, 0), 16 + min(dy, 0)), slice(max(dx, 0), 16 + min(dx, 0))
        assert torch.equal(y[:, ys, xs], x[:, max(-dy, 0) : 16 - max(dy, 0), max(-dx, 0) : 16 - max(dx, 0)])
    assert moved > 16


def test_scaling_changes_exactly_the_images_it_says():
    images = torch.rand((32, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    out, cond = augment(images, 0.5, generator=torch.Generator().manual_seed(2), kinds=("scale",))
    scaled = cond[:, 6] != 0
    assert 4 < int(scaled.sum()) < 28
    assert torch.equal(out[~scaled], images[~scaled]) and not torch.equal(out[scaled], images[scaled])


def test_augmentation_draws_only_from_its_generator():
    images, state = _distinct_images(), torch.get_rng_state()
    kinds = ("xflip", "rot90", "translate", "scale")
    a = augment(images, 0.5, generator=torch.Generator().manual_seed(5), kinds=kinds)
    b = augment(images, 0.5, generator=torch.Generator().manual_seed(5), kinds=kinds)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("parameterization", ["vp", "edm"])
def test_sampling_never_sees_a_nonzero_augmentation_label(parameterization):
    ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), augment_p=0.5, **{**TINY_DDPM, "parameterization": parameterization})
    seen = {"train": [], "sample": []}
    phase = ["train"]
    for network in (ddpm.unet, ddpm.ema):
        network.augment_embed.register_forward_pre_hook(lambda module, args: seen[phase[0]].append(args[0].clone()))
    images, labels = torch.rand((16, 1, 8, 8)) * 2 - 1, torch.arange(16) % 3
    ddpm.train().loss(images, labels, generator=torch.Generator().manual_seed(0))
    assert any(v.abs().sum() > 0 for v in seen["train"]), "training must see the augmentations"
    phase[0] = "sample"
    ddpm.eval()
    samplers = sorted(EDM_SOLVERS) if parameterization == "edm" else ["ddim", "ddpm", "dpm++2m"]
    for sampler in samplers:
        for guidance in (1.0, 2.0):
            ddpm.sample([0, 1, 2], sampler=sampler, steps=3, guidance=guidance, generator=torch.Generator().manual_seed(0))
    assert seen["sample"] and all(torch.count_nonzero(v) == 0 for v in seen["sample"])


def _pre_option_loss(self, images, labels, *, generator=None):
    """The vp loss as written before augmentation existed (synthaug 0.2), for the bit-identity test."""
    batch = len(images)
    source = generator.device if generator is not None else images.device
    t = torch.randint(self.config.timesteps, (batch,), generator=generator, device=source).to(images.device)
    noise = torch.randn(images.shape, generator=generator, device=source, dtype=images.dtype).to(images.device)
    drop = torch.rand(batch, generator=generator, device=source).to(images.device) < self.config.label_dropout
    labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
    output = self.unet(self.schedule.add_noise(images, noise, t), t, labels)
    errors = (output - self.schedule.target(images, noise, t, self.config.prediction)).square().flatten(1).mean(1)
    if self.config.loss_weighting == "min-snr":
        errors = errors * self._min_snr_weight(t)
    return {"loss": errors.mean()}


def test_augment_p_zero_trains_bit_identically_to_no_augmentation(small, tmp_path, monkeypatch):
    opts = {"max_steps": 3, "batch_size": 25, **QUIET, **TINY_VP}
    with_option = synthaug.fit(small, "ddpm", out=tmp_path / "a", augment_p=0.0, **opts)
    assert with_option.unet.augment_embed is None
    monkeypatch.setattr(ConditionalDDPM, "loss", _pre_option_loss)
    without = synthaug.fit(small, "ddpm", out=tmp_path / "b", **opts)
    assert _same(with_option, without)


# --- sizes -----------------------------------------------------------------------------------------------------


def _parameters(ddpm):
    return sum(p.numel() for p in ddpm.unet.parameters())


def test_the_size_ladder():
    counts = {size: _parameters(create("ddpm", num_classes=10, image_shape=(1, 28, 28), size=size)) for size in SIZES}
    assert counts["base"] == 691_076  # the 0.69M network of synthaug 0.2, unchanged
    assert 0.25 < counts["small"] / counts["base"] < 0.42 and 3.0 <= counts["large"] / counts["base"] <= 4.1
    assert _parameters(create("ddpm", num_classes=10, image_shape=(1, 28, 28))) == counts["base"]
    explicit = create("ddpm", num_classes=10, image_shape=(1, 28, 28), size="large", base_channels=48)
    assert explicit.config.base_channels == 48 and explicit.config.channel_mults == SIZES["large"][1]


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [({"augment_p": 1.0}, r"augment_p must lie in \[0, 1\) .*got 1.0"),
     ({"augment_p": -0.1}, r"augment_p must lie in \[0, 1\) .*got -0.1"),
     ({"augment_p": float("nan")}, r"augment_p must lie in \[0, 1\)"),
     ({"parameterization": "ve"}, r"parameterization must be one of \['vp', 'edm'\], got 've'"),
     ({"size": "huge"}, r"size must be one of \['small', 'base', 'large'\], got 'huge'"),
     ({"sampler": "heun", "parameterization": "vp"}, r"unknown sampler 'heun'; known samplers: \['ddim', 'ddpm', 'dpm\+\+2m'\] \(heun needs parameterization 'edm'\)"),
     ({"sampler": "euler", "parameterization": "edm"}, r"unknown sampler 'euler'; known samplers: \['ddim', 'ddpm', 'dpm\+\+2m', 'heun'\]"),
     ({"augment_p": 0.1, "augmentations": ("xflip", "cutout")}, r"unknown augmentation\(s\) \['cutout'\]; choose from \['xflip', "),
     ({"parameterization": "edm", "spacing": "logsnr"}, r"spacing='logsnr' applies to parameterization 'vp'"),
     ({"parameterization": "edm", "sigma_min": 0.0}, r"need 0 < sigma_min < sigma_max"),
     ({"churn": -1.0, "parameterization": "edm"}, r"churn must be >= 0")],
)  # fmt: skip
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        create("ddpm", num_classes=3, image_shape=(1, 8, 8), **{**TINY_DDPM, **options})


def test_bad_names_given_to_the_config_directly():
    from synthaug.generators.ddpm import DDPMConfig

    with pytest.raises(ValueError, match=r"unknown parameterization 'v'; choose one of \['vp', 'edm'\]"):
        DDPMConfig(num_classes=3, image_shape=(1, 8, 8), parameterization="v")
    with pytest.raises(ValueError, match=r"unknown size 'xl'; sizes: \['small', 'base', 'large'\]"):
        DDPMConfig(num_classes=3, image_shape=(1, 8, 8), size="xl")


def test_rot90_needs_square_images():
    with pytest.raises(ValueError, match="rot90 needs square images, these are 8x16"):
        create("ddpm", num_classes=3, image_shape=(1, 8, 16), augment_p=0.1, **TINY_DDPM)


def test_bad_edm_sample_options():
    ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), **EDM)
    with pytest.raises(ValueError, match=r"unknown sampler 'euler'; known samplers"):
        ddpm.sample([0], sampler="euler")
    with pytest.raises(ValueError, match=r"churn must be >= 0"):
        ddpm.sample([0], sampler="heun", churn=-1.0)
    vp = create("ddpm", num_classes=3, image_shape=(1, 8, 8), **TINY_VP)
    with pytest.raises(ValueError, match=r"has no option\(s\) \['churn'\]"):
        vp.sample([0], churn=1.0)
