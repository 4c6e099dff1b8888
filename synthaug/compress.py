"""Compressing a trained generator so that it samples faster: structured pruning and step distillation.

Both return an ordinary generator (and save it, loadable with :func:`synthaug.load`):

* :func:`prune` (ddpm): removes a share of the inner channels of every residual block of the UNet, the
  ones that matter least (smallest ``|GroupNorm scale| x |weights out of the channel|``), so both of
  the block's convolutions really shrink; then fine-tunes briefly on the generator's training data
  through :func:`synthaug.fit`. The pruned widths are in the saved config (``block_widths``).
* :func:`distill` (ddpm): trains a student that samples in 1-4 DDIM steps to land where the teacher's
  DPM-Solver++(2M), run on a finer grid, lands from the same noise (trajectory distillation, in the
  spirit of progressive distillation, Salimans & Ho 2022, https://arxiv.org/abs/2202.00512, but in
  one stage against a fast solver). The student starts from the teacher's weights and its config
  samples with ``sampler="ddim"``, ``steps=k`` and log-SNR spacing: the grid it was trained on. An EDM
  teacher (``parameterization="edm"``) is distilled the same way on EDM's noise levels: the student's DDIM
  (Euler) steps on ``karras_sigmas(k)`` land where the teacher's DPM-Solver++(2M) lands on a finer grid.

Post-training int8 quantization is not offered: PyTorch's dynamic quantization covers linear layers
only, and the static kind cannot run these networks' GroupNorm and SiLU in int8; BENCHMARKS.md
records the measurement.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler

from synthaug.checks import check_float, check_int
from synthaug.console import progress_callback, quiet_lightning
from synthaug.data.conventions import renamed_argument
from synthaug.data.labeled import LabeledImages
from synthaug.generators.base import ConditionalGenerator
from synthaug.generators.ddpm import ConditionalDDPM
from synthaug.generators.diffusion.edm import karras_sigmas
from synthaug.generators.diffusion.solvers import DPMSolverPP2M
from synthaug.generators.diffusion.solvers.edm import solve_edm
from synthaug.io import load, save
from synthaug.seeding import torch_generator
from synthaug.training import fit

METHODS = ("prune", "distill", "prune+distill")

log = logging.getLogger(__name__)


def _ddpm(generator: ConditionalGenerator | str | os.PathLike, what: str) -> ConditionalDDPM:
    generator = load(generator) if isinstance(generator, (str, os.PathLike)) else generator
    if not isinstance(generator, ConditionalDDPM):
        raise ValueError(f"{what} works on diffusion generators (family 'ddpm'); got family {generator.family!r}. "
                         f"For the other families, train a smaller configuration with synthaug.fit")  # fmt: skip
    return generator


def pruned_widths(generator: ConditionalDDPM, ratio: float) -> list[int]:
    """Inner width of each residual block after removing ``ratio`` of its channels (multiples of 8, at least 8)."""
    if not 0 < ratio < 1:
        raise ValueError(f"ratio is the share of channels to remove and must lie in (0, 1), got {ratio}")
    widths = []
    for index, block in enumerate(generator.ema.blocks()):
        hidden = block.conv1.out_channels
        kept = 8 * round(hidden * (1 - ratio) / 8)
        if kept < 8:
            smallest = min(b.conv1.out_channels for b in generator.ema.blocks())
            raise ValueError(f"ratio {ratio} leaves fewer than 8 of the {hidden} channels of residual block {index} "
                             f"(GroupNorm needs multiples of 8); valid ratios here are below {1 - 4 / smallest:.2f}")  # fmt: skip
        widths.append(min(kept, hidden))
    return widths


@torch.no_grad()
def prune_weights(generator: ConditionalDDPM, ratio: float) -> ConditionalDDPM:
    """A copy of ``generator`` (its EMA weights) with each residual block's least important inner channels removed."""
    widths = pruned_widths(generator, ratio)
    config = dataclasses.replace(generator.config, block_widths=tuple(widths))
    pruned = ConditionalDDPM(config, generator.class_names)
    state = {k: v.clone() for k, v in generator.ema.state_dict().items()}
    prefixes = [f"down.{i}." for i in range(len(generator.ema.down))] + [f"middle.{i}." for i in range(len(generator.ema.middle))]
    prefixes += [f"up.{i}." for i in range(len(generator.ema.up))]
    for prefix, block, width in zip(prefixes, generator.ema.blocks(), widths):
        hidden = block.conv1.out_channels
        importance = block.norm2.weight.abs() * block.conv2.weight.abs().sum(dim=(0, 2, 3))  # (hidden,)
        keep = importance.topk(width).indices.sort().values
        for name in ("conv1.weight", "conv1.bias", "norm2.weight", "norm2.bias"):
            state[prefix + name] = state[prefix + name][keep]
        for name in ("embed.weight", "embed.bias"):  # scale rows, then shift rows
            state[prefix + name] = state[prefix + name][torch.cat([keep, keep + hidden])]
        state[prefix + "conv2.weight"] = state[prefix + "conv2.weight"][:, keep]
    pruned.unet.load_state_dict(state)
    pruned.ema.load_state_dict(state)
    pruned.training_data = generator.training_data  # the same model, narrower: it has seen the same images
    return pruned


def prune(
    generator: ConditionalGenerator | str | os.PathLike,
    data: LabeledImages,
    *,
    ratio: float = 0.5,
    steps: int = 1000,
    out: str | os.PathLike = "synthaug-pruned",
    seed: int = 0,
    **fit_options: Any,
) -> ConditionalDDPM:
    """Structured pruning of a ddpm (``ratio`` of the inner channels removed), then ``steps`` of fine-tuning on
    ``data`` (the images it was trained on) with :func:`synthaug.fit`; saved to ``out/generator``."""
    teacher = _ddpm(generator, "pruning")
    recorded, given = teacher.training_data, data.fingerprint()
    if recorded is not None and recorded.digest != given.digest:
        log.warning("pruning fine-tunes on %s, not on the %s the generator was trained on (on the command line: "
                    "--data, --per-class and --subset-seed as in fit); the result records both", given.describe(),
                    recorded.describe())  # fmt: skip
    pruned = prune_weights(teacher, ratio)
    return fit(data, out=out, max_steps=steps, seed=seed, initial=pruned, **fit_options)


class _Distillation(L.LightningModule):
    """Trains ``student`` to take the teacher's many small solver steps in a few DDIM steps."""

    def __init__(self, teacher: ConditionalDDPM, student: ConditionalDDPM, *, substeps: int, lr: float, seed: int) -> None:
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.student = student
        self.substeps, self.lr, self.seed = substeps, lr, seed
        schedule, cfg = teacher.schedule, teacher.config
        self.edm = cfg.parameterization == "edm"
        if self.edm:  # the student's noise levels, and the teacher's through every one of them
            sigmas = karras_sigmas(student.config.steps, cfg.sigma_min, cfg.sigma_max, cfg.rho)
            self.grid, self.fine = sigmas[:-1], _refine_sigmas(sigmas, substeps, cfg.rho)
        else:
            self.grid = schedule.spaced(student.config.steps, "logsnr")  # the student's timesteps
            self.fine = _refine(schedule, self.grid, substeps)  # the teacher's, through every student timestep
        self.guidance = cfg.guidance

    def training_step(self, labels: torch.Tensor, batch_idx: int) -> torch.Tensor:
        rng = torch_generator(self.seed, "distill", self.global_step)
        x = torch.randn((len(labels), *self.student.image_shape), generator=rng).to(self.device)
        if self.edm:
            return self._edm_step(x * self.grid[0], labels)
        with torch.no_grad():
            final, states = self.teacher.solve(x, labels, self.fine, DPMSolverPP2M(self.teacher.schedule),
                                               guidance=self.guidance, record=self.grid)  # fmt: skip
        loss = torch.zeros((), device=self.device)
        schedule = self.student.schedule
        for i, t in enumerate(self.grid):  # each student step must land on the teacher's state at the next timestep
            s = self.grid[i + 1] if i + 1 < len(self.grid) else -1
            target = states[s] if s >= 0 else final
            x0, eps = self.student.predict_x0_eps(states[t], t, labels, self.guidance, network=self.student.unet, clip=False)
            if s >= 0:
                alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.tensor([s])))
                landed = alpha * x0 + sigma * eps
            else:
                landed = x0
            loss = loss + F.mse_loss(landed, target)
        self.log("train/loss", loss.detach(), prog_bar=True)
        return loss / len(self.grid)

    def _edm_step(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The EDM version of :meth:`training_step`: each student Euler step must land on the teacher's state."""
        with torch.no_grad():
            final, states = solve_edm(lambda y, sigma: self.teacher.predict_x0_eps(y, sigma, labels, self.guidance)[0],
                                      x, self.fine, "dpm++2m", record=self.grid)  # fmt: skip
        loss = torch.zeros((), device=self.device)
        for i, sigma in enumerate(self.grid):
            following = self.grid[i + 1] if i + 1 < len(self.grid) else 0.0
            target = states[following] if following > 0 else final
            x0, _ = self.student.predict_x0_eps(states[sigma], sigma, labels, self.guidance, network=self.student.unet, clip=False)
            landed = x0 + (following / sigma) * (states[sigma] - x0)  # DDIM = Euler in EDM's coordinates
            loss = loss + F.mse_loss(landed, target)
        self.log("train/loss", loss.detach(), prog_bar=True)
        return loss / len(self.grid)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)  # before any checkpoint of this step (see training.py)
        self.student.on_train_step_end(self.global_step)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.student.unet.parameters(), lr=self.lr)


def _refine(schedule: Any, grid: list[int], substeps: int) -> list[int]:
    """``grid`` with ``substeps`` log-SNR-spaced timesteps in each interval (and down to t = 0 after the last)."""
    lam = 0.5 * torch.log(schedule.alpha_bar / (1 - schedule.alpha_bar))  # decreasing in t
    points = [*grid, 0]
    fine: list[int] = []
    for start, end in zip(points, points[1:]):
        targets = torch.linspace(float(lam[start]), float(lam[end]), substeps + 1, dtype=torch.float64)[:-1]
        fine += (lam[None, :] - targets[:, None]).abs().argmin(dim=1).tolist()
    fine = sorted(set(fine) | set(grid), reverse=True)
    return fine


def _refine_sigmas(sigmas: list[float], substeps: int, rho: float) -> list[float]:
    """``sigmas`` (ending in 0) with ``substeps`` levels in each interval, evenly spaced in ``sigma^(1/rho)``;
    every level of ``sigmas`` is kept exactly (step distillation records the states there)."""
    fine: list[float] = []
    for a, b in zip(sigmas, sigmas[1:]):
        lo, hi = b ** (1 / rho), a ** (1 / rho)
        fine += [a] + [(hi + j / substeps * (lo - hi)) ** rho for j in range(1, substeps)]
    return fine + [0.0]


def distill(
    generator: ConditionalGenerator | str | os.PathLike,
    *,
    student_steps: int = 2,
    substeps: int = 5,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-4,
    class_counts: list[int] | None = None,
    out: str | os.PathLike = "synthaug-distilled",
    seed: int = 0,
    accelerator: str = "auto",
    enable_progress_bar: bool | None = None,
    progress_bar: bool | None = None,
) -> ConditionalDDPM:
    """A ddpm that samples in ``student_steps`` (1-4) DDIM steps, distilled from ``generator`` (its own sampling
    grid refined by ``substeps`` per student step, DPM-Solver++(2M), at its default guidance).

    No images are needed: each step draws noise and labels (uniform, or proportional to ``class_counts``),
    runs the teacher, and trains the student to land on the teacher's states. Saved to ``out/generator``.
    ``enable_progress_bar`` (default True; ``progress_bar`` is its deprecated alias) logs progress.
    """
    progress_bar = renamed_argument(enable_progress_bar, progress_bar, new_name="enable_progress_bar",
                                    old_name="progress_bar", default=True, where="distill")  # fmt: skip
    teacher = _ddpm(generator, "step distillation")
    if not 1 <= student_steps <= 4:
        raise ValueError(f"student_steps must lie in [1, 4] (distillation is for few-step sampling), got {student_steps}")
    if substeps < 1 or steps < 1:
        raise ValueError(f"substeps and steps must be >= 1, got {substeps} and {steps}")
    spacing = None if teacher.config.parameterization == "edm" else "logsnr"  # edm: its own noise levels
    config = dataclasses.replace(teacher.config, sampler="ddim", steps=student_steps, spacing=spacing, eta=0.0,
                                 ema_decay=0.995, ema_warmup=True)  # fmt: skip
    student = ConditionalDDPM(config, teacher.class_names)
    student.unet.load_state_dict(teacher.ema.state_dict())
    student.ema.load_state_dict(teacher.ema.state_dict())
    weights = torch.ones(teacher.num_classes) if class_counts is None else torch.as_tensor(class_counts, dtype=torch.float64)
    labels = torch.multinomial(weights.double(), 64 * batch_size, replacement=True, generator=torch_generator(seed, "labels"))
    loader = DataLoader(labels, batch_size=batch_size, sampler=RandomSampler(labels, generator=torch_generator(seed, "order")),
                        drop_last=True)  # fmt: skip
    module = _Distillation(teacher, student, substeps=substeps, lr=lr, seed=seed)
    callbacks = [progress_callback("distill")] if progress_bar else []
    with quiet_lightning(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        trainer = L.Trainer(max_steps=steps, max_epochs=-1, accelerator=accelerator, devices=1, logger=False,
                            enable_checkpointing=False, enable_model_summary=False, callbacks=callbacks,
                            enable_progress_bar=False, default_root_dir=out)  # fmt: skip
        trainer.fit(module, loader)
    student = student.eval()
    student.training_data = teacher.training_data  # it learns from the teacher alone, so it has seen what the teacher saw
    save(student, Path(out) / "generator")
    return student


def compress(
    generator: ConditionalGenerator | str | os.PathLike,
    data: LabeledImages | None = None,
    *,
    method: Literal["prune", "distill", "prune+distill"] = "prune+distill",
    ratio: float = 0.5,
    prune_steps: int = 1000,
    student_steps: int = 2,
    distill_steps: int = 1000,
    out: str | os.PathLike = "synthaug-compressed",
    seed: int = 0,
    enable_progress_bar: bool | None = None,
    progress_bar: bool | None = None,
) -> ConditionalDDPM:
    """Prune, distill, or both (pruned first, then distilled from the pruned model); see :func:`prune` and
    :func:`distill`. Pruning fine-tunes on ``data``, the generator's training images. Returns the result,
    saved (with intermediate models) under ``out``. ``enable_progress_bar`` (default True) is Lightning's name;
    ``progress_bar`` is its deprecated alias (removed in 0.3)."""
    progress_bar = renamed_argument(enable_progress_bar, progress_bar, new_name="enable_progress_bar",
                                    old_name="progress_bar", default=True, where="compress")  # fmt: skip
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_float("ratio", ratio, above=0, below=1)
    check_int("prune_steps", prune_steps)
    check_int("student_steps", student_steps, maximum=4)
    check_int("distill_steps", distill_steps)
    check_int("seed", seed, minimum=0)
    teacher = _ddpm(generator, "compression")
    out = Path(out)
    if "prune" in method:
        if data is None:
            raise ValueError("pruning fine-tunes on the generator's training images: pass data= (--data on the command line)")
        teacher = prune(teacher, data, ratio=ratio, steps=prune_steps, out=out / "pruned" if method != "prune" else out,
                        seed=seed, enable_progress_bar=progress_bar)  # fmt: skip
    if "distill" in method:
        counts = data.class_counts() if data is not None else None
        teacher = distill(teacher, student_steps=student_steps, steps=distill_steps, class_counts=counts, out=out, seed=seed,
                          enable_progress_bar=progress_bar)  # fmt: skip
    return teacher


def parameters(generator: ConditionalGenerator) -> int:
    """Trainable parameters of the network a generator samples with (its EMA copy where it has one)."""
    network = getattr(generator, "ema", generator)
    return sum(p.numel() for p in network.parameters())


__all__ = ["METHODS", "compress", "distill", "parameters", "prune", "prune_weights", "pruned_widths"]
