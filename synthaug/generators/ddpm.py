"""A class-conditional diffusion model with classifier-free guidance.

Training (Ho et al. 2020, https://arxiv.org/abs/2006.11239): noise an image to a random timestep of
a cosine schedule and regress the noise (``"epsilon"``) or ``v`` (Salimans & Ho 2022,
https://arxiv.org/abs/2202.00512); the label is dropped to a "no class" token with probability
``label_dropout`` so one network also learns the unconditional model. Sampling (Ho & Salimans
2022, https://arxiv.org/abs/2207.12598): the conditional and unconditional passes run as one batch
and combine as ``uncond + guidance * (cond - uncond)``; the loop is written out below, with the
sampler (``ddpm``, ``ddim``, ``dpm++2m``) as a separate object. Sampling uses an EMA of the weights.

``parameterization="edm"`` trains and samples as EDM instead (Karras et al. 2022, https://arxiv.org/abs/2206.00364;
diffusion/edm.py, diffusion/solvers/edm.py), and ``augment_p > 0`` adds EDM's non-leaking, conditioned
augmentation (diffusion/augment.py) to either.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from synthaug.generators.base import ConditionalGenerator, GeneratorConfig, Randomness, randn, register, update_ema
from synthaug.generators.diffusion import SOLVERS, ConditionalUNet, NoiseSchedule, Solver
from synthaug.generators.diffusion.augment import AUGMENT_DIM, augment, check_augment_options
from synthaug.generators.diffusion.edm import TIME_SCALE, EDMPreconditioning, check_edm, karras_sigmas, training_sigmas
from synthaug.generators.diffusion.feedback import FEEDBACK_DEFAULTS, FeedbackGuidance, feedback_record
from synthaug.generators.diffusion.solvers import DDIMSolver
from synthaug.generators.diffusion.solvers.edm import EDM_SOLVERS, solve_edm

MAX_GUIDANCE = 20.0
#: network presets, ``size -> (base_channels, channel_mults, blocks_per_level)``; parameters at 28x28, 10 classes
SIZES: dict[str, tuple[int, tuple[int, ...], int]] = {
    "small": (16, (1, 2), 2),  # 0.25M, about a third of base: the most training steps in a few CPU minutes
    "base": (32, (1, 2), 1),  # 0.69M: the CPU default
    "large": (64, (1, 2), 1),  # 2.75M, 4x base: the one to take on a GPU
}
PARAMETERIZATIONS = ("vp", "edm")
#: a ddpm trained without augmentation on classes this small copied its training images (BENCHMARKS.md:
#: at 10 Fashion-MNIST images per class, 40% near-copies after 5,200 steps; none with augment_p=0.3)
FEW_IMAGES_PER_CLASS = 25


@dataclass
class DDPMConfig(GeneratorConfig):
    """The ddpm's options.

    ``size`` picks the network: ``"small"`` (0.25M parameters on 28x28 images, a third of base: for a
    few CPU minutes), ``"base"`` (0.69M, the CPU default) or ``"large"`` (2.75M, 4x base: the one for a
    GPU). It sets ``base_channels``, ``channel_mults`` and ``blocks_per_level``; any of them given explicitly wins.

    ``parameterization``: ``"edm"`` (the default; Karras et al. 2022: the denoiser preconditioned for data of
    standard deviation ``sigma_data``, training noise ``ln(sigma) ~ N(p_mean, p_std^2)``, EDM's loss weight,
    sampling on the noise levels ``sigma_max`` .. ``sigma_min`` spaced by ``rho``; ``prediction``,
    ``loss_weighting``, ``snr_gamma`` and ``spacing`` do not apply) or ``"vp"`` (the default until the A/B in
    BENCHMARKS.md: a cosine schedule of ``timesteps`` discrete steps; the network predicts ``prediction``,
    weighted by ``loss_weighting``). Samplers: ``ddpm``, ``ddim`` and ``dpm++2m`` for both, and ``heun``
    (EDM's 2nd order, ``2 * steps - 1`` network evaluations, ``churn`` its stochasticity, 0 = deterministic)
    for edm. A saved generator keeps its parameterization.

    ``augment_p``: augmentation-conditioned training (diffusion/augment.py): each of ``augmentations``
    (``xflip``, ``rot90``, ``translate``, ``scale``) is applied to a training image with probability
    ``augment_p``, and its parameters are given to the network, which sampling asks for none of; 0 (the
    default) trains exactly as without the option.
    """

    #: None: from ``size``
    base_channels: int | None = None
    #: None: from ``size``
    channel_mults: tuple[int, ...] | None = None
    #: fold p x p patches into channels before the UNet; None picks 2 for images of 16 px and more, else 1
    patch_size: int | None = None
    #: None: from ``size``
    blocks_per_level: int | None = None
    dropout: float = 0.1
    timesteps: int = 1000
    prediction: Literal["epsilon", "v"] = "v"
    #: probability of training a step without its label (classifier-free guidance)
    label_dropout: float = 0.1
    #: defaults for sample(); each can be overridden per call
    guidance: float = 1.0
    sampler: str = "dpm++2m"
    steps: int = 10
    eta: float = 0.0
    ema_decay: float = 0.999
    #: EMA decay min(ema_decay, (1 + step) / (10 + step)): early on the average follows training instead of
    #: remembering the random initialisation
    ema_warmup: bool = True
    #: per-timestep loss weight: "uniform", or "min-snr" (Hang et al. 2023, https://arxiv.org/abs/2303.09556),
    #: which caps the weight of nearly clean timesteps at snr_gamma and converges faster
    loss_weighting: Literal["uniform", "min-snr"] = "min-snr"
    snr_gamma: float = 5.0
    #: how sample() spaces its timesteps ("linear" or "logsnr"); None: the sampler's own (a distilled model sets it)
    spacing: Literal["linear", "logsnr"] | None = None
    #: inner width of each residual block, in the UNet's order (down, middle, up); None: the block's width.
    #: Structured pruning (synthaug.compress) sets it.
    block_widths: tuple[int, ...] | None = None
    size: Literal["small", "base", "large"] = "base"
    #: "edm" since the A/B in BENCHMARKS.md (equal steps and minutes: FID 0.251 vs 0.298, CAS 81.6 vs 79.6%);
    #: a generator saved before the option existed was "vp" and loads as one (saved_defaults)
    parameterization: Literal["vp", "edm"] = "edm"
    #: EDM (parameterization="edm"): the data's standard deviation, the training noise distribution, the sampling schedule
    sigma_data: float = 0.5
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    #: EDM's S_churn for the heun sampler (a sample() option; 0: deterministic)
    churn: float = 0.0
    #: probability of each augmentation per training image (0: off; EDM used 0.12 on CIFAR-10), in [0, 1)
    augment_p: float = 0.0
    augmentations: tuple[str, ...] = ("xflip", "rot90", "translate")

    saved_defaults: ClassVar[dict[str, Any]] = {"parameterization": "vp"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; sizes: {list(SIZES)} (or set base_channels, channel_mults, "
                             "blocks_per_level yourself)")  # fmt: skip
        preset = SIZES[self.size]
        self.base_channels = preset[0] if self.base_channels is None else self.base_channels
        self.channel_mults = tuple(int(m) for m in (preset[1] if self.channel_mults is None else self.channel_mults))
        self.blocks_per_level = preset[2] if self.blocks_per_level is None else self.blocks_per_level
        _, h, w = self.image_shape
        if self.patch_size is None:
            self.patch_size = 2 if min(h, w) >= 16 else 1
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {self.patch_size}")
        factor = self.patch_size * 2 ** (len(self.channel_mults) - 1)
        if h % factor or w % factor:
            working = ", ".join(str(factor * k) for k in range(2, 9))
            raise ValueError(
                f"patch_size {self.patch_size} and a UNet with {len(self.channel_mults)} levels divide images by {factor}, "
                f"so height and width must be divisible by {factor}; {h}x{w} is not. Sizes that work: {working}, ...; "
                f"or pad the images, or use a smaller patch_size or fewer channel_mults"
            )
        if self.base_channels % 8:
            raise ValueError(f"base_channels must be a multiple of 8 (GroupNorm), got {self.base_channels}")
        if self.prediction not in ("epsilon", "v"):
            raise ValueError(f"prediction must be 'epsilon' or 'v', got {self.prediction!r}")
        if not 0 <= self.label_dropout < 1:
            raise ValueError(f"label_dropout must lie in [0, 1), got {self.label_dropout}")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in (0, 1), got {self.ema_decay}")
        if self.snr_gamma <= 0:
            raise ValueError(f"snr_gamma must be > 0, got {self.snr_gamma}")
        if self.block_widths is not None:
            self.block_widths = tuple(int(w) for w in self.block_widths)
            expected = ConditionalUNet.count_blocks(len(self.channel_mults), self.blocks_per_level)
            if len(self.block_widths) != expected:
                raise ValueError(f"block_widths needs one width per residual block ({expected}), got {len(self.block_widths)}")
            bad = [w for w in self.block_widths if w < 8 or w % 8]
            if bad:
                raise ValueError(f"block widths must be multiples of 8 (GroupNorm) and at least 8, got {bad}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"unknown parameterization {self.parameterization!r}; choose one of {list(PARAMETERIZATIONS)}")
        if self.parameterization == "edm":
            check_edm(self.sigma_data, self.p_std, self.sigma_min, self.sigma_max, self.rho)
            if self.spacing is not None:
                raise ValueError(f"spacing={self.spacing!r} applies to parameterization 'vp'; 'edm' samples on its own "
                                 "noise levels (sigma_min, sigma_max, rho): leave spacing unset")  # fmt: skip
        self.augmentations = check_augment_options(self.augment_p, self.augmentations, self.image_shape)
        check_sampling(self.sampler, self.steps, self.guidance, self.eta, self.timesteps, self.parameterization, self.churn)

    def training_advice(self, class_counts: Sequence[int]) -> str | None:
        """Augmentation for classes of fewer than :data:`FEW_IMAGES_PER_CLASS` images: without it, at 10
        Fashion-MNIST images per class, the ddpm copied its training images (BENCHMARKS.md)."""
        fewest = min(class_counts)
        if self.augment_p > 0 or fewest >= FEW_IMAGES_PER_CLASS:
            return None
        return (f"a class has only {fewest} training images: with 10 images per class (Fashion-MNIST) the ddpm without "
                "augmentation copied its training images (40% of samples were near-copies after 5,200 steps), while "
                "augment_p=0.3 kept near-copies at 0% and raised CAS from 72.1 to 75.2% (BENCHMARKS.md); pass "
                "augment_p=0.3 and check the samples' near-copies with synthaug.evaluate")  # fmt: skip


def check_sampling(
    sampler: str, steps: int, guidance: float, eta: float, timesteps: int, parameterization: str = "vp", churn: float = 0.0
) -> None:
    known = EDM_SOLVERS if parameterization == "edm" else SOLVERS
    if sampler not in known:
        hint = f" ({sampler} needs parameterization 'edm')" if sampler in EDM_SOLVERS else ""
        raise ValueError(f"unknown sampler {sampler!r}; known samplers: {sorted(known)}{hint}")
    if churn < 0:
        raise ValueError(f"churn must be >= 0 (0: deterministic heun), got {churn}")
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must lie in [1, {timesteps}], got {steps}")
    if not 0 <= guidance <= MAX_GUIDANCE or math.isnan(guidance):
        raise ValueError(
            f"guidance must lie in [0, {MAX_GUIDANCE:g}] (0: unconditional, 1: conditional, >1: stronger), got {guidance}"
        )
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")


@register
class ConditionalDDPM(ConditionalGenerator):
    """Class-conditional diffusion with a UNet, classifier-free guidance and fast samplers.

    Example:
        >>> import torch
        >>> from synthaug.generators import create
        >>> ddpm = create("ddpm", num_classes=10, image_shape=(1, 8, 8), base_channels=8, channel_mults=(1, 2))
        >>> ddpm.sample([3, 4], steps=5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 1, 8, 8])
    """

    family = "ddpm"
    config_class = DDPMConfig
    default_lr = 5e-4
    default_steps = 6000

    def __init__(self, config: DDPMConfig, class_names: Sequence[str] | None = None) -> None:
        super().__init__(config, class_names)
        self.unet = ConditionalUNet(
            config.image_shape[0], config.num_classes, base_channels=config.base_channels,
            channel_mults=config.channel_mults, blocks_per_level=config.blocks_per_level, dropout=config.dropout,
            patch_size=config.patch_size, block_widths=config.block_widths,
            augment_dim=AUGMENT_DIM if config.augment_p > 0 else 0,
        )  # fmt: skip
        self.ema = copy.deepcopy(self.unet).requires_grad_(False).eval()
        self.schedule = NoiseSchedule(config.timesteps)
        self.precond = EDMPreconditioning(config.sigma_data)
        self.null_class = config.num_classes

    def _augment(self, images: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor | None]:
        """Augmented images and their conditioning vectors; the images untouched and no vector (no draw) when off."""
        if self.config.augment_p == 0:
            return images, None
        return augment(images, self.config.augment_p, generator=generator, kinds=self.config.augmentations)

    def loss(self, images: Tensor, labels: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        if self.config.parameterization == "edm":
            return self._edm_loss(images, labels, generator)
        batch = len(images)
        source = generator.device if generator is not None else images.device
        t = torch.randint(self.config.timesteps, (batch,), generator=generator, device=source).to(images.device)
        noise = randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        drop = torch.rand(batch, generator=generator, device=source).to(images.device) < self.config.label_dropout
        labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        images, conditioning = self._augment(images, generator)
        output = self.unet(self.schedule.add_noise(images, noise, t), t, labels, conditioning)
        errors = (output - self.schedule.target(images, noise, t, self.config.prediction)).square().flatten(1).mean(1)  # (B,)
        if self.config.loss_weighting == "min-snr":
            errors = errors * self._min_snr_weight(t)
        return {"loss": errors.mean()}

    def _edm_loss(self, images: Tensor, labels: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """EDM's training loss: ``lambda(sigma) * |D(y + sigma * n, sigma) - y|^2`` with ``ln(sigma) ~ N(p_mean, p_std^2)``."""
        cfg, batch = self.config, len(images)
        source = generator.device if generator is not None else images.device
        sigma = training_sigmas(batch, cfg.p_mean, cfg.p_std, generator=generator, device=images.device)  # (B,)
        noise = randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        drop = torch.rand(batch, generator=generator, device=source).to(images.device) < cfg.label_dropout
        labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        images, conditioning = self._augment(images, generator)
        denoised = self.denoise(images + sigma.view(-1, 1, 1, 1).to(images.dtype) * noise, sigma, labels, self.unet, conditioning)
        errors = (denoised - images).square().flatten(1).mean(1)  # (B,)
        return {"loss": (self.precond.loss_weight(sigma) * errors).mean()}

    def denoise(self, x: Tensor, sigma: Tensor, labels: Tensor, network: nn.Module, conditioning: Tensor | None = None) -> Tensor:
        """EDM's preconditioned denoiser ``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` (``sigma``: (B,) float)."""
        c_skip, c_out, c_in, c_noise = (c.to(torch.float32) for c in self.precond.scalings(sigma.to(torch.float32)))
        output = network(c_in.view(-1, 1, 1, 1).to(x.dtype) * x, c_noise * TIME_SCALE, labels, conditioning)
        return c_skip.view(-1, 1, 1, 1) * x + c_out.view(-1, 1, 1, 1) * output

    def _min_snr_weight(self, t: Tensor) -> Tensor:
        """``min(SNR, gamma)`` over the SNR factor that the prediction target carries (``SNR + 1`` for v, ``SNR`` for eps)."""
        alpha, sigma = self.schedule.alpha_sigma(t)
        snr = (alpha / sigma).square()
        weight = snr.clamp(max=self.config.snr_gamma) / (snr + 1 if self.config.prediction == "v" else snr)
        return weight.to(torch.float32)

    @torch.no_grad()
    def on_train_step_end(self, step: int = 0) -> None:
        decay = self.config.ema_decay
        if self.config.ema_warmup:
            decay = min(decay, (1 + step) / (10 + step))
        update_ema(self.ema, self.unet, decay)

    def sample_defaults(self) -> dict[str, Any]:
        cfg = self.config
        edm = {"churn": cfg.churn} if cfg.parameterization == "edm" else {}
        return {"steps": cfg.steps, "guidance": cfg.guidance, "sampler": cfg.sampler, "eta": cfg.eta, **edm, **FEEDBACK_DEFAULTS}

    def sample_options_record(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return feedback_record(self.check_sample_options(options))  # the classifier as the sha256 of its weights

    @torch.no_grad()
    def sample(
        self, labels: Tensor | Sequence[int], *, generator: Randomness = None, **options: Any
    ) -> Tensor:
        """Images of ``labels`` in ``[-1, 1]``; ``steps``, ``guidance``, ``sampler`` and ``eta`` default to the config's.

        ``feedback=classifier`` (logits of images in ``[-1, 1]``), ``feedback_scale`` and ``feedback_criterion``
        (``"entropy"`` or ``"loss"``) steer samples to where the classifier is unsure (diffusion/feedback.py).
        """
        cfg = self.config
        resolved = self.check_sample_options({k: v for k, v in options.items() if v is not None})
        steps, guidance, sampler, eta = (resolved[k] for k in ("steps", "guidance", "sampler", "eta"))
        check_sampling(sampler, steps, guidance, eta, cfg.timesteps, cfg.parameterization, resolved.get("churn", 0.0))
        labels = self.check_labels(labels)
        if cfg.parameterization == "edm":
            return self._sample_edm(labels, resolved, generator)
        solver = DDIMSolver(self.schedule, eta=eta) if sampler == "ddim" else SOLVERS[sampler](self.schedule)
        x = randn((len(labels), *self.image_shape), generator=generator, device=self.device)
        timesteps = self.schedule.spaced(steps, cfg.spacing or solver.spacing)
        feedback = FeedbackGuidance.from_options(resolved, num_classes=self.num_classes, alpha_sigma=self.schedule.alpha_sigma,
                                                 predict=self.predict_x0_eps)  # fmt: skip
        return self.solve(x, labels, timesteps, solver, guidance=guidance, generator=generator, feedback=feedback).clamp(-1.0, 1.0)

    def _sample_edm(self, labels: Tensor, options: dict[str, Any], generator: Randomness) -> Tensor:
        """``sample`` for parameterization ``"edm"``: noise at ``sigma_max``, then the sampler down EDM's noise levels."""
        cfg = self.config
        sigmas = karras_sigmas(options["steps"], cfg.sigma_min, cfg.sigma_max, cfg.rho)
        x = randn((len(labels), *self.image_shape), generator=generator, device=self.device) * sigmas[0]
        feedback = FeedbackGuidance.from_options(options, num_classes=self.num_classes, alpha_sigma=_ve_alpha_sigma,
                                                 predict=self.predict_x0_eps)  # fmt: skip
        predict = self.predict_x0_eps if feedback is None else feedback.guide
        guidance = options["guidance"]
        x = solve_edm(lambda x, sigma: predict(x, sigma, labels, guidance)[0], x, sigmas, options["sampler"],
                      eta=options["eta"], churn=options["churn"], generator=generator)  # fmt: skip
        return x.clamp(-1.0, 1.0)

    def predict_x0_eps(self, x: Tensor, t: int | float, labels: Tensor, guidance: float = 1.0, *,
                       network: nn.Module | None = None, clip: bool = True) -> tuple[Tensor, Tensor]:  # fmt: skip
        """The clean-image and noise estimates at ``x`` (timestep ``t``; for ``"edm"``, the noise level sigma) of
        ``network`` (default: the EMA UNet), with classifier-free guidance (conditional and unconditional passes as
        one batch) when ``guidance != 1``. For ``"edm"`` the noise estimate is ``(x - x0) / sigma``."""
        network = self.ema if network is None else network
        if self.config.parameterization == "edm":
            sigma = torch.full((len(x),), float(t), device=x.device, dtype=torch.float32)
            if guidance != 1.0:
                both = self.denoise(torch.cat([x, x]), torch.cat([sigma, sigma]),
                                    torch.cat([labels, torch.full_like(labels, self.null_class)]), network)  # fmt: skip
                conditional, unconditional = both.chunk(2)
                x0 = unconditional + guidance * (conditional - unconditional)
            else:
                x0 = self.denoise(x, sigma, labels, network)
            x0 = x0.clamp(-1.0, 1.0) if clip else x0
            return x0, (x - x0) / float(t)
        t_batch = torch.full((len(x),), t, device=x.device, dtype=torch.int64)
        if guidance != 1.0:
            both = network(torch.cat([x, x]), torch.cat([t_batch, t_batch]), torch.cat([labels, torch.full_like(labels, self.null_class)]))
            conditional, unconditional = both.chunk(2)
            output = unconditional + guidance * (conditional - unconditional)
        else:
            output = network(x, t_batch, labels)
        return self.schedule.to_x0_eps(output, x, t_batch, self.config.prediction, clip=clip)

    @torch.no_grad()
    def solve(
        self,
        x: Tensor,
        labels: Tensor,
        timesteps: Sequence[int],
        solver: Solver,
        *,
        guidance: float = 1.0,
        generator: Randomness = None,
        record: Sequence[int] = (),
        feedback: FeedbackGuidance | None = None,
    ) -> Tensor | tuple[Tensor, dict[int, Tensor]]:
        """Run ``solver`` from ``x`` at ``timesteps[0]`` down through ``timesteps`` to the clean image.

        With ``record``, also returns the states ``x_t`` reached at those timesteps (step distillation's targets).
        ``feedback`` adds classifier feedback to every prediction.
        """
        kept = {}
        for i, t in enumerate(timesteps):
            if t in record:
                kept[t] = x
            s = timesteps[i + 1] if i + 1 < len(timesteps) else -1
            x0, eps = (self.predict_x0_eps if feedback is None else feedback.guide)(x, t, labels, guidance)
            x = solver.step(x0, eps, t, s, x, generator)
        return (x, kept) if record else x


def _ve_alpha_sigma(sigma: Tensor) -> tuple[Tensor, Tensor]:
    """EDM's ``x = y + sigma * n`` in the ``x = alpha * y + sigma * n`` form that feedback guidance reads: ``alpha = 1``."""
    sigma = sigma.to(torch.float64)
    return torch.ones_like(sigma), sigma
