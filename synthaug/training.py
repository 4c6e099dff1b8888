"""Training any registered generator with Lightning.

:func:`fit` wires three pieces together: :class:`GeneratorModule` (the LightningModule around a
:class:`~synthaug.generators.ConditionalGenerator`), :class:`ImagesDataModule` (seeded, resumable
batches of a :class:`~synthaug.data.LabeledImages`) and :class:`SampleGridCallback` (a per-class
sample grid PNG per epoch). Lightning supplies the loop, progress bar, logging, checkpoints,
resume and the distributed strategies.

Runs are reproducible: weights are initialised from ``seed``, batches are shuffled by a sampler
seeded with ``(seed, epoch)``, and the training noise comes from a ``torch.Generator`` whose state is
saved in every checkpoint, so a run resumed from a mid-epoch checkpoint ends with the same weights
as an uninterrupted one. The global RNG is never used.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import re
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from synthaug.checks import check_float, check_int
from synthaug.console import progress_callback, quiet_lightning
from synthaug.data.conventions import renamed_argument
from synthaug.data.fingerprint import DataFingerprint
from synthaug.data.labeled import LabeledImages, to_signed_unit
from synthaug.data.samplers import EpochShuffleSampler
from synthaug.generators.base import ConditionalGenerator, get_family
from synthaug.io import save
from synthaug.seeding import torch_generator
from synthaug.visualize import class_grid, save_image_grid

log = logging.getLogger(__name__)


class _TrainerEpochSampler(EpochShuffleSampler):
    """Takes its epoch from the trainer when an epoch's iteration starts, not from ``set_epoch``.

    After a restart Lightning numbers ``set_epoch`` by its count of processed epochs, which is one
    ahead of ``current_epoch`` when the checkpoint was written at the end of an epoch in
    step-based training; the trainer's ``current_epoch`` is what the uninterrupted run saw.
    """

    def __init__(self, size: int, *, epoch_of: Any, **kwargs: Any) -> None:
        super().__init__(size, **kwargs)
        self._epoch_of = epoch_of

    def set_epoch(self, epoch: int) -> None:
        pass

    def __iter__(self):  # noqa: ANN204
        self.epoch = self._epoch_of()
        return super().__iter__()


class ImagesDataModule(L.LightningDataModule):
    """Training batches ``(uint8 images, int64 labels)`` of a :class:`LabeledImages`, resumable anywhere.

    It counts the batches trained in the current epoch and saves that count in checkpoints; on
    resume the sampler skips exactly those, so training continues with the batch it would have
    seen, from a checkpoint written mid-epoch, at the end of an epoch, or when a run stopped.
    """

    def __init__(self, data: LabeledImages, *, batch_size: int = 64, seed: int = 0, num_workers: int = 0) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data, self.batch_size, self.seed, self.num_workers = data, batch_size, seed, num_workers
        self.fingerprint = data.fingerprint()  # saved in checkpoints: a resume on other images is refused
        self._epoch, self._batches = 0, 0
        self._resume: tuple[int, int] | None = None

    def train_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        epoch_of = (lambda: self.trainer.current_epoch) if self.trainer else (lambda: 0)
        sampler = _TrainerEpochSampler(len(self.data), epoch_of=epoch_of, seed=self.seed, rank=rank, world_size=world)
        batch_size = min(self.batch_size, len(sampler))
        if batch_size < self.batch_size:
            log.info("batch_size lowered from %d to %d: each rank has only %d images", self.batch_size, batch_size, len(sampler))
        if self._resume is not None:
            # Lightning finishes the checkpoint's epoch first (no batch is left if it had ended) and
            # then starts the next one from its first batch.
            epoch, batches = self._resume
            sampler.resume_from(epoch, batches * batch_size)
            self._epoch, self._batches = epoch, batches
            self._resume = None
        return DataLoader(
            self.data,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=True,
            # Seeds the workers; without it the DataLoader draws that seed from the global RNG.
            generator=torch_generator(self.seed, "loader"),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        if trainer is not None and trainer.training:
            if trainer.current_epoch != self._epoch:
                self._epoch, self._batches = trainer.current_epoch, 0
            self._batches += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        data = {"count": self.fingerprint.count, "digest": self.fingerprint.digest}
        return {"epoch": self._epoch, "batches": self._batches, "seed": self.seed, "batch_size": self.batch_size, "data": data}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if (state_dict["seed"], state_dict["batch_size"]) != (self.seed, self.batch_size):
            raise ValueError(
                f"the checkpoint was trained with seed={state_dict['seed']}, batch_size={state_dict['batch_size']}; "
                f"resume with the same values (got seed={self.seed}, batch_size={self.batch_size})"
            )
        saved = state_dict.get("data")
        if saved is None:
            log.warning("the checkpoint does not record its training data (written by an earlier synthaug): "
                        "resuming on the data given, unchecked")  # fmt: skip
        elif saved.get("digest") != self.fingerprint.digest:
            raise ValueError(
                f"the checkpoint was trained on other data: {saved.get('count', 0):,} images (digest "
                f"{str(saved.get('digest'))[:12]}), this run has {self.fingerprint.describe()}; resume with the data it "
                "was trained on (on the command line: the same --data, --split, --per-class and --subset-seed)"
            )
        self._resume = (state_dict["epoch"], state_dict["batches"])


class GeneratorModule(L.LightningModule):
    """LightningModule training one :class:`ConditionalGenerator` by minimising its ``loss``.

    Args:
        family: registered generator family, e.g. ``"vae"``.
        config: that family's config as a dict (including ``num_classes`` and ``image_shape``).
        class_names: one per class.
        lr: Adam learning rate; defaults to the family's ``default_lr``.
        seed: seeds the weight initialisation and the training noise (offset by the rank).
    """

    def __init__(
        self, family: str, config: dict[str, Any], class_names: list[str], lr: float | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        cls = get_family(family)
        # Initialise from the seed without leaving a trace in the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.generator: ConditionalGenerator = cls(cls.config_class.from_dict(config), class_names)
        self.lr = lr if lr is not None else cls.default_lr
        # Lightning counts every optimiser step as a step, so a GAN's max_steps covers both optimisers.
        self.automatic_optimization = not cls.manual_optimization
        self._noise: torch.Generator | None = None
        self._noise_state: torch.Tensor | None = None

    def on_fit_start(self) -> None:
        self._noise = torch_generator(self.hparams.seed, "noise", self.global_rank, device=self.device)
        if self._noise_state is not None:
            self._noise.set_state(self._noise_state)
            self._noise_state = None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        images, labels = batch
        images = to_signed_unit(images)
        if self.automatic_optimization:
            losses = self.generator.loss(images, labels, generator=self._noise)
        else:  # e.g. a GAN's discriminator and generator steps
            losses = self.generator.manual_step(images, labels, self.optimizers(), self.manual_backward, generator=self._noise)
            self.generator.on_train_step_end(self.global_step)
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, prog_bar=True, on_step=True)
        return losses.get("loss") if self.automatic_optimization else None

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # EMA weights move right after the optimiser step, not in on_train_batch_end: Lightning runs the
        # checkpoint callback's on_train_batch_end first, so a checkpoint would hold them one update behind.
        super().optimizer_step(*args, **kwargs)
        self.generator.on_train_step_end(self.global_step)

    def configure_optimizers(self) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        return self.generator.configure_optimizers(self.lr)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._noise is not None:
            checkpoint["synthaug_noise_rng"] = self._noise.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("hyper_parameters", {})
        old, new = _with_defaults(saved.get("family"), saved.get("config", {})), self.hparams.config
        if saved.get("family") != self.hparams.family or old != new:
            differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(
                f"the checkpoint holds a {saved.get('family')!r} generator whose options differ from this run's "
                f"({', '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in differ) or 'family'}); "
                "resume with the options it was trained with"
            )
        self._noise_state = checkpoint.get("synthaug_noise_rng")


def stale_options(generator: ConditionalGenerator, family: str, **options: Any) -> dict[str, tuple[Any, Any]]:
    """Where a trained ``generator`` differs from what ``fit(data, family, **options)`` trains today:
    ``{option: (trained, today)}``, empty when it matches. A study that reuses a cached generator checks this,
    so that a changed default (the ddpm's ``parameterization``, say) is not mixed into its old runs unseen."""
    config = generator.config
    wanted = get_family(family).config_class.from_dict(
        {"num_classes": config.num_classes, "image_shape": config.image_shape, **options}
    ).to_dict()  # fmt: skip
    have = config.to_dict()
    return {k: (have.get(k), wanted.get(k)) for k in sorted(set(have) | set(wanted)) if have.get(k) != wanted.get(k)}


def describe_stale(stale: dict[str, tuple[Any, Any]]) -> str:
    """:func:`stale_options`' result as one phrase for an error message: ``"option: trained -> today, ..."``."""
    return ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in stale.items())


def _with_defaults(family: str | None, config: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the options added since it was written at the values it trained with
    (:meth:`GeneratorConfig.from_saved`), so that it resumes; as saved if it does not make a valid config."""
    try:
        return get_family(str(family)).config_class.from_saved(dict(config)).to_dict()
    except (TypeError, ValueError):
        return config


class SampleGridCallback(Callback):
    """Writes ``dirpath/epoch=NNNN.png``: ``per_class`` samples of each class (one class per row), fixed seed."""

    def __init__(self, dirpath: str | os.PathLike, *, per_class: int = 8, every_n_epochs: int = 1, seed: int = 0) -> None:
        self.dirpath, self.per_class, self.every_n_epochs, self.seed = Path(dirpath), per_class, every_n_epochs, seed

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or self.every_n_epochs < 1 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        generator = pl_module.generator
        was_training = generator.training
        generator.eval()
        images = class_grid(generator, self.per_class, seed=self.seed)
        generator.train(was_training)
        save_image_grid(images, self.dirpath / f"epoch={trainer.current_epoch:04d}.png", nrow=self.per_class)


def fit(
    data: LabeledImages,
    family: str = "vae",
    *,
    out: str | os.PathLike = "synthaug-run",
    max_steps: int | None = None,
    max_epochs: int | None = None,
    batch_size: int = 64,
    lr: float | None = None,
    seed: int = 0,
    num_workers: int = 0,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    strategy: str | Any = "auto",
    precision: str | int | None = None,
    ckpt_path: str | os.PathLike | None = None,
    checkpoint_every_n_steps: int | None = None,
    checkpoint_every_n_epochs: int | None = None,
    keep_checkpoints: int = 1,
    grid_every_n_epochs: int | None = None,
    logger: Literal["csv", "tensorboard"] | bool = "csv",
    enable_progress_bar: bool | None = None,
    verbose: bool = False,
    trainer_kwargs: dict[str, Any] | None = None,
    initial: ConditionalGenerator | None = None,
    progress_bar: bool | None = None,
    **options: Any,
) -> ConditionalGenerator:
    """Train a class-conditional generator on ``data`` and save it to ``out/generator``.

    Args:
        data: the real labelled images (see :mod:`synthaug.data`).
        family: registered generator family (``synthaug.generators.GENERATORS``: ``"vae"``, ``"gan"``,
            ``"ddpm"``, ...). Before 0.2 this argument was called ``generator``; that keyword still works,
            with a warning.
        out: run directory: ``generator/`` (the saved model), ``checkpoints/`` (Lightning, with
            ``last.ckpt``), ``logs/version_N/`` (metrics, one version per run), ``samples/`` (a grid per epoch) and ``samples.png``.
        max_steps: optimiser steps (a GAN counts its generator and discriminator steps); when
            neither this nor ``max_epochs`` is given, the family's ``default_steps``, which suit a
            few hundred to a few thousand images (vae 2000, gan 6000, ddpm 6000).
        max_epochs: stop after so many epochs (alone, or with ``max_steps``: whichever comes first).
        ckpt_path: a Lightning checkpoint (or ``"last"``) to resume from; the same data, seed and
            batch size continue exactly where the checkpoint left off (other data is refused), from any checkpoint: one written
            every epoch, every ``checkpoint_every_n_steps``, when the run stopped, or on Ctrl-C
            (``last.ckpt``). A checkpoint holding anything but tensors and plain values is refused.
        checkpoint_every_n_steps, checkpoint_every_n_epochs: save a checkpoint every so many steps or epochs
            (default: about 20 over the run, at most one an epoch; every epoch when only ``max_epochs`` is given).
        keep_checkpoints: how many periodic checkpoints to keep (``-1``: all), besides ``last.ckpt``.
        grid_every_n_epochs: write a sample grid every so many epochs (default: about 20 over the run).
        accelerator, devices, strategy, precision: passed to ``lightning.Trainer`` (e.g.
            ``devices=2, strategy="ddp"``, ``precision="bf16-mixed"``).
        enable_progress_bar: a progress bar on stderr (one line per tenth of the run when stderr is not a
            terminal); default True. Lightning's name; ``progress_bar`` is its deprecated alias (removed in 0.3).
        verbose: let Lightning print its hardware banner and tips.
        trainer_kwargs: any other ``lightning.Trainer`` arguments.
        initial: start from this generator's configuration and weights instead of a fresh one (fine-tuning,
            as after pruning); ``family`` and ``options`` are then its own.
        **options: the family's hyper-parameters, e.g. ``latent_dim=16`` for ``"vae"``.

    Returns:
        The trained generator in eval mode; its ``training_data`` (saved with it) is the fingerprint of
        ``data`` (see :meth:`~synthaug.data.LabeledImages.fingerprint`), against which evaluations check
        their test sets.

    Example:
        >>> from synthaug.data import load_digits
        >>> gen = synthaug.fit(load_digits(), "vae", out="runs/digits", max_steps=1500)  # doctest: +SKIP
    """
    if not isinstance(data, LabeledImages):
        raise TypeError(
            f"data must be a synthaug.data.LabeledImages, got {type(data).__name__}; load it with "
            "synthaug.data.from_arrays / from_dataset / from_image_folder / from_hf"
        )
    if "generator" in options:
        warnings.warn("fit(generator=...) is deprecated; the family is fit(data, family=...)", FutureWarning, stacklevel=2)
        family = options.pop("generator")
    progress_bar = renamed_argument(enable_progress_bar, progress_bar, new_name="enable_progress_bar",
                                    old_name="progress_bar", default=True, where="fit")  # fmt: skip
    _check_numbers(max_steps, max_epochs, batch_size, lr, seed, num_workers, checkpoint_every_n_steps,
                   checkpoint_every_n_epochs, keep_checkpoints, grid_every_n_epochs)  # fmt: skip
    if initial is not None:
        if options:
            raise ValueError(f"fit(initial=...) trains the given generator as it is; drop the options {sorted(options)}")
        _check_fits(initial, data)
        family, options = initial.family, {k: v for k, v in initial.config.to_dict().items() if k not in ("num_classes", "image_shape")}
    cls = get_family(family)
    if max_steps is None and max_epochs is None:
        max_steps = cls.default_steps
    out = Path(out)
    ckpt_path = _checked_resume(ckpt_path, out)
    config = cls.config_class.from_dict({"num_classes": data.num_classes, "image_shape": data.image_shape, **options})
    advice = config.training_advice(data.class_counts()) if initial is None and ckpt_path is None else None
    if advice:
        log.warning(advice)
    module = GeneratorModule(family, config.to_dict(), list(data.class_names), lr=lr, seed=seed)
    if initial is not None:
        module.generator.load_state_dict(initial.state_dict())
    datamodule = ImagesDataModule(data, batch_size=batch_size, seed=seed, num_workers=num_workers)
    callbacks = _callbacks(out, len(data) // batch_size, max_steps, max_epochs, checkpoint_every_n_steps,
                           checkpoint_every_n_epochs, keep_checkpoints, grid_every_n_epochs, seed)  # fmt: skip
    if progress_bar:
        callbacks.append(progress_callback(f"fit {family}"))
    kwargs: dict[str, Any] = {
        "max_steps": max_steps if max_steps is not None else -1,
        "max_epochs": max_epochs if max_epochs is not None else -1,
        "accelerator": accelerator,
        "devices": devices,
        "strategy": strategy,
        "default_root_dir": out,
        "logger": _loggers(out, logger) or False,
        "callbacks": callbacks,
        "enable_progress_bar": progress_bar and sys.stderr.isatty(),
        "enable_model_summary": False,
        # Lightning warns when an epoch is shorter than the logging interval.
        "log_every_n_steps": max(1, min(10, len(data) // batch_size)),
        # The data module shards by rank itself so that resume stays exact; see EpochShuffleSampler.
        "use_distributed_sampler": False,
        **({"precision": precision} if precision is not None else {}),
        **{k: v for k, v in (trainer_kwargs or {}).items() if k != "callbacks"},
    }
    kwargs["callbacks"] += list((trainer_kwargs or {}).get("callbacks") or [])
    with quiet_lightning(not verbose), warnings.catch_warnings():
        _expected_warnings()
        trainer = L.Trainer(**kwargs)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

    trained = module.generator.eval()
    trained.training_data = _training_data(datamodule.fingerprint, initial)
    if trainer.is_global_zero:
        save(trained, out / "generator")
        save_image_grid(class_grid(trained, 8, seed=seed), out / "samples.png", nrow=8)
    return trained


def _callbacks(
    out: Path,
    steps_per_epoch: int,
    max_steps: int | None,
    max_epochs: int | None,
    every_n_steps: int | None,
    every_n_epochs: int | None,
    keep: int,
    grid_every_n_epochs: int | None,
    seed: int,
) -> list[Callback]:
    """Checkpoints (periodic, last, on Ctrl-C, pruned after a resume) and the sample grids, at their default cadences."""
    steps_per_epoch = max(steps_per_epoch, 1)
    if grid_every_n_epochs is None:  # about 20 grids a run
        epochs = max_epochs if max_steps is None else math.ceil(max_steps / steps_per_epoch)
        grid_every_n_epochs = max(1, epochs // 20)
    if every_n_steps is None and every_n_epochs is None and max_steps is not None:
        # About 20 checkpoints a run, and never more often than once an epoch (on a hundred images an epoch is a step).
        every_n_steps = max(steps_per_epoch, math.ceil(max_steps / 20))
    return [
        _PeriodicCheckpoint(dirpath=out / "checkpoints", filename="{epoch}-{step}", every_n_train_steps=every_n_steps,
                        every_n_epochs=every_n_epochs, save_top_k=keep, save_last=True, enable_version_counter=False),
        _SaveLastWhereItStopped(out / "checkpoints" / "last.ckpt"),
        _PruneCheckpoints(out / "checkpoints", keep),
        SampleGridCallback(out / "samples", every_n_epochs=grid_every_n_epochs, seed=seed),
    ]  # fmt: skip


def _expected_warnings() -> None:
    """Silence the warnings fit makes Lightning give on purpose (inside a ``warnings.catch_warnings()``)."""
    # ImagesDataModule resumes mid-epoch exactly (it checkpoints its position), which Lightning cannot
    # see from the DataLoader and warns about.
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
    # A rerun or a resume writes into the run directory it finds: its checkpoints are the run's own.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # Resuming with another checkpoint cadence: the old cadence's callback state is simply not needed.
    warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks used to create")
    # EMA copies of a network are frozen in eval mode on purpose.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


def _training_data(fingerprint: DataFingerprint, initial: ConditionalGenerator | None) -> DataFingerprint | None:
    """What the trained generator has seen: this run's data, and an initial generator's (unknown if that is unknown)."""
    if initial is None:
        return fingerprint
    if initial.training_data is None:
        log.warning("the initial generator records no training data, so neither does the fine-tuned one; "
                    "held-out sets cannot be checked against it")  # fmt: skip
        return None
    return initial.training_data.union(fingerprint)


def _check_numbers(
    max_steps: Any, max_epochs: Any, batch_size: Any, lr: Any, seed: Any, num_workers: Any, every_n_steps: Any,
    every_n_epochs: Any, keep_checkpoints: Any, grid_every_n_epochs: Any,
) -> None:
    """fit's numeric arguments, each refused in one line naming it (``None`` only where it means "unset")."""
    check_int("max_steps", max_steps, optional=True)
    check_int("max_epochs", max_epochs, optional=True)
    check_int("batch_size", batch_size)
    check_float("lr", lr, above=0, optional=True)
    check_int("seed", seed, minimum=0)
    check_int("num_workers", num_workers, minimum=0)
    check_int("checkpoint_every_n_steps", every_n_steps, optional=True)
    check_int("checkpoint_every_n_epochs", every_n_epochs, optional=True)
    check_int("keep_checkpoints", keep_checkpoints, minimum=-1)
    check_int("grid_every_n_epochs", grid_every_n_epochs, optional=True)


def _check_fits(generator: ConditionalGenerator, data: LabeledImages) -> None:
    if tuple(generator.image_shape) != tuple(data.image_shape) or tuple(generator.class_names) != tuple(data.class_names):
        raise ValueError(
            f"the initial generator makes {generator.image_shape} images of classes {list(generator.class_names)[:10]}, "
            f"the data has {data.image_shape} and {list(data.class_names)[:10]}: fine-tune on the data it was trained on"
        )


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds objects that ``torch.load(weights_only=True)`` refuses to unpickle."""


def _checked_resume(ckpt_path: str | os.PathLike | None, out: Path) -> str | os.PathLike | None:
    """Refuse ``"last"`` with nothing to resume, and anything but a checkpoint of ``fit``, before training starts."""
    if ckpt_path is None:
        return None
    path = out / "checkpoints" / "last.ckpt" if str(ckpt_path) == "last" else Path(ckpt_path)
    where = "resume from a .ckpt file in OUT/checkpoints/ (or 'last')"
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a checkpoint: {where}")
    if not path.is_file():
        missing = f"{out / 'checkpoints'} has no last.ckpt" if str(ckpt_path) == "last" else f"{path} does not exist"
        raise FileNotFoundError(f"nothing to resume: {missing}; leave out ckpt_path to train from scratch")
    with open(path, "rb") as f:
        head = f.read(16)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; Lightning's checkpoints are torch.save's
        if len(head) >= 9 and head[8:9] == b"{":  # safetensors: an 8-byte header length, then JSON
            raise ValueError(f"{path} is a safetensors weights file (a saved generator), not a training checkpoint: {where}")
        raise ValueError(f"{path} is not a checkpoint (not a torch archive; the file is corrupt or of another kind): {where}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"{path} holds Python objects that synthaug will not unpickle (loading them could run arbitrary code); "
            "only checkpoints written by synthaug.fit can be resumed"
        ) from err
    except Exception as err:  # a damaged archive fails in many ways (RuntimeError, KeyError, EOFError, ...)
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"{path} is a damaged checkpoint ({type(err).__name__}: {first}): {where}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ValueError(f"{path} is a torch file but not a checkpoint written by synthaug fit: {where}")
    return path


def _loggers(out: Path, logger: str | bool) -> list[Any]:
    if logger == "csv" or logger is True:
        return [CSVLogger(out, name="logs")]
    if logger == "tensorboard":
        return [TensorBoardLogger(out, name="logs")]
    if logger is not False:
        raise ValueError(f"logger must be 'csv', 'tensorboard' or False, got {logger!r}")
    return []


class _SaveLastWhereItStopped(Checkpoint):
    """``last.ckpt`` holds the step where training stopped, so ``ckpt_path="last"`` resumes from there.

    Lightning's ``ModelCheckpoint`` updates ``last.ckpt`` only with its periodic saves, so a run that a
    time budget (``max_time``), ``should_stop`` or a ``max_steps`` off the cadence ends would resume from
    the periodic checkpoint before it and train the steps since then again; Ctrl-C or a crash would lose
    them. The save happens at the end of the last batch, where the periodic ones happen (a checkpoint
    written after the loop has ended does not resume exactly); as a ``Checkpoint`` this callback runs
    after the others, so it sees the ``should_stop`` that the Timer sets in the same hook. (Lightning's
    ``OnExceptionCheckpoint`` deletes its file when a run ends normally and turns every later fit into a
    resume, so it does not fit here.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        loop = trainer.fit_loop
        last_epoch = loop.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= loop.max_epochs
        if (
            trainer.should_stop
            or (trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps)
            or (last_epoch and loop.epoch_loop.batch_progress.is_last_batch)
        ):
            trainer.save_checkpoint(self.path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.global_step > 0:
            trainer.save_checkpoint(self.path)


class _PeriodicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that saves every ``every_n_train_steps`` alike for automatic and manual optimisation.

    Lightning (2.6) sends manual optimisation (the GAN) down a branch meant for saving a copy of the
    weights from before the optimiser step, and warns at every save that no such copy exists. For
    synthaug the state after the step is the right one: it is where an exact resume continues. So
    the manual branch is replaced by the same saves without the warning's premise.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if pl_module.automatic_optimization:
            super().on_train_batch_end(trainer, pl_module, *args)
            return
        every = self._every_n_train_steps
        if every < 1 or trainer.global_step % every or self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)


class _PruneCheckpoints(Callback):
    """At the end of training, keep only the newest ``keep`` periodic checkpoints in ``dirpath``.

    ModelCheckpoint forgets, after a resume, the files the interrupted run wrote after the checkpoint
    it resumed from; this removes them too, so ``keep_checkpoints`` holds whatever happened.
    """

    def __init__(self, dirpath: Path, keep: int) -> None:
        self.dirpath, self.keep = dirpath, keep

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.keep < 0 or not trainer.is_global_zero or not self.dirpath.is_dir():
            return
        periodic = [(int(m.group(1)), p) for p in self.dirpath.glob("epoch=*-step=*.ckpt") if (m := _STEP.search(p.name))]
        for _, path in sorted(periodic, reverse=True)[self.keep :]:
            path.unlink(missing_ok=True)


_STEP = re.compile(r"step=(\d+)")
