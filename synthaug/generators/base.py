"""The interface every generator family implements, and the registry of families."""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from synthaug.data.fingerprint import DataFingerprint
from synthaug.data.labeled import to_uint8

#: where sampling draws its noise: one ``torch.Generator``, one per sample, or the global RNG (None)
Randomness = torch.Generator | Sequence[torch.Generator] | None


@dataclass
class GeneratorConfig:
    """Hyper-parameters shared by every family; each family extends this dataclass.

    ``num_classes`` and ``image_shape`` normally come from the training data.
    """

    num_classes: int
    image_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)  # JSON gives lists back
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.image_shape) != 3 or self.image_shape[0] not in (1, 3):
            raise ValueError(f"image_shape must be (C, H, W) with C in 1 or 3, got {self.image_shape}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    #: options whose default changed, at the value a config saved before the option existed trained with
    saved_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> GeneratorConfig:
        """The config a save (``config.json``, a checkpoint) describes. An option it lacks was added after it
        was written: :attr:`saved_defaults` where that option's default changed since (what the save trained
        with), else today's default."""
        return cls.from_dict({**cls.saved_defaults, **values})

    def training_advice(self, class_counts: Sequence[int]) -> str | None:
        """A warning for training this config on classes of ``class_counts`` images, or None (``fit`` logs it)."""
        return None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GeneratorConfig:
        """The config from a dict (JSON, the CLI's ``--set``), each value checked against its field's type."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown {cls.__name__} option(s) {unknown}; valid options are {sorted(known)}")
        hints = typing.get_type_hints(cls)
        return cls(**{name: _typed(name, value, hints[name]) for name, value in values.items()})

    @classmethod
    def options(cls) -> dict[str, Any]:
        """The family's options (not ``num_classes``/``image_shape``) with their defaults."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def _typed(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the type ``hint`` (ints widen to floats, lists to tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _typed(name, value, arg)
            except (TypeError, ValueError) as err:
                errors.append(err)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{name} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list of values, got {value!r} ({type(value).__name__})")
        inner = args[0] if args else Any
        return tuple(_typed(f"{name}[{i}]", v, inner) for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false, got {value!r} ({type(value).__name__})")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
        return value
    return value


def _items(values: Any) -> list[Any]:
    """The elements of a (possibly nested) list or tuple, flattened; anything else as it is."""
    if isinstance(values, (list, tuple)):
        return [x for v in values for x in _items(v)]
    return [values]  # a string counts as one element, not as its characters


class ConditionalGenerator(nn.Module, ABC):
    """A class-conditional image generator.

    Subclasses set ``family`` and ``config_class``, implement :meth:`loss` (what training
    minimises) and :meth:`sample`, and are registered with :func:`register`.
    Images go in and come out as floats in ``[-1, 1]`` with shape ``(N, *image_shape)``.
    """

    family: ClassVar[str]
    config_class: ClassVar[type[GeneratorConfig]]
    #: Adam learning rate used by :func:`synthaug.fit` when none is given.
    default_lr: ClassVar[float] = 1e-3
    #: training steps when ``fit`` is given neither ``max_steps`` nor ``max_epochs``
    default_steps: ClassVar[int] = 2000
    #: True for families that step their optimisers themselves in :meth:`manual_step` (GANs).
    manual_optimization: ClassVar[bool] = False
    #: the fingerprint of the images it was trained on, set by :func:`synthaug.fit` and saved with it; ``None``
    #: when unknown (a fresh generator, or one saved by a synthaug that did not record it)
    training_data: DataFingerprint | None = None

    def __init__(self, config: GeneratorConfig, class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        names = tuple(str(n) for n in class_names) if class_names is not None else tuple(map(str, range(config.num_classes)))
        if len(names) != config.num_classes:
            raise ValueError(f"{len(names)} class names given for num_classes={config.num_classes}")
        self.class_names = names

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @abstractmethod
    def loss(
        self, images: torch.Tensor, labels: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Training losses for a batch; ``"loss"`` is minimised, other entries are logged."""

    def configure_optimizers(self, lr: float) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        """Adam over the trainable parameters (not EMA copies); families with several optimisers override it."""
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=lr)

    def manual_step(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        optimizers: Sequence[torch.optim.Optimizer],
        backward: Callable[[torch.Tensor], None],
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """One training step that runs its own optimisers (only for ``manual_optimization`` families)."""
        raise NotImplementedError(f"{type(self).__name__} trains through loss(); manual_step is for manual optimisation")

    def on_train_step_end(self, step: int = 0) -> None:
        """Called after every training step with the number of optimiser steps so far (e.g. to update EMA
        weights); nothing by default."""

    @abstractmethod
    def sample(
        self, labels: torch.Tensor | Sequence[int], *, generator: Randomness = None, **options: Any
    ) -> torch.Tensor:
        """Images of the given classes, as floats in ``[-1, 1]`` of shape ``(len(labels), *image_shape)``.

        ``[-1, 1]`` is the model space; :func:`sample_uint8` gives stored ``uint8`` images, and
        ``synthaug.data.signed_to_unit`` converts to ``[0, 1]`` floats (docs/design.md, "Conventions").

        ``options`` are the family's sampling options (:meth:`sample_defaults` lists them), e.g. a
        diffusion model's ``steps`` and ``guidance``; ``generator`` is the ``torch.Generator`` every
        random draw comes from, or a list of them, one per label (each sample then depends on its
        own generator only).
        """

    def sample_defaults(self) -> dict[str, Any]:
        """The sampling options :meth:`sample` takes, with the values it uses when they are not given."""
        return {}

    def check_sample_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Every sampling option with its effective value (``options`` over :meth:`sample_defaults`);
        an unknown name is refused with the valid ones."""
        defaults = self.sample_defaults()
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            valid = ", ".join(sorted(defaults)) or "none"
            raise ValueError(f"{self.family} sample() has no option(s) {unknown}; its options are: {valid}")
        return {**defaults, **options}

    def sample_options_record(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The effective sampling options as JSON values, as a bank's manifest and a source's fingerprint
        record them; a family whose options can hold objects (a ddpm's ``feedback`` classifier) records
        a fingerprint of each instead."""
        return self.check_sample_options(options)

    def check_labels(self, labels: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """``labels`` as an ``int64`` tensor on this generator's device, after checking the range."""
        strings = [] if isinstance(labels, torch.Tensor) else [x for x in _items(labels) if isinstance(x, (str, bytes))]
        if strings:  # torch.as_tensor(["3"]) fails with "too many dimensions 'str'"
            raise TypeError(
                f"labels must be integer class indices 0..{self.num_classes - 1}, got the string {strings[0]!r}; "
                f"for a class name use generator.class_names.index(name) (class_names: {list(self.class_names)[:10]})"
            )
        labels = torch.as_tensor(labels)
        if labels.numel() == 0 and labels.ndim == 1:  # torch.as_tensor([]) is float32
            labels = labels.to(torch.int64)
        if labels.ndim != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be a 1-D sequence of integer class indices, got {labels.dtype} {tuple(labels.shape)}")
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if len(bad):
            raise ValueError(
                f"this generator was trained on classes 0..{self.num_classes - 1} {list(self.class_names)}; "
                f"cannot sample labels {sorted(set(bad.tolist()))[:10]}"
            )
        return labels.to(device=self.device, dtype=torch.int64)

    def save(self, path: str) -> None:
        """Deprecated: use ``synthaug.save(generator, path)``.

        Saving lives in :mod:`synthaug.io`, a layer above the generators; this method reaches up to
        it and will be removed in 0.3.
        """
        warnings.warn(
            "ConditionalGenerator.save(path) is deprecated and will be removed in synthaug 0.3; "
            "use synthaug.save(generator, path)",
            FutureWarning,
            stacklevel=2,
        )
        from synthaug.io import save  # layering: allowed here only, see tests/test_layers.py

        save(self, path)

    def extra_repr(self) -> str:
        return f"family={self.family!r}, num_classes={self.num_classes}, image_shape={self.image_shape}"


def randn(
    shape: Sequence[int],
    *,
    generator: Randomness,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise drawn from ``generator`` (on its own device), then moved to ``device``.

    Drawing on the generator's device keeps a CPU ``torch.Generator`` usable with a CUDA model and
    makes samples reproducible across devices. A list of generators, one per row of ``shape``,
    draws each row from its own (as diffusers does): a sample then depends on its own generator
    only, whatever else is in the batch.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"a list of generators needs one per sample: got {len(generator)} for {shape[0]} samples")
        rows = [torch.randn(tuple(shape[1:]), generator=g, device=g.device, dtype=dtype).to(device) for g in generator]
        return torch.stack(rows) if rows else torch.empty(tuple(shape), device=device, dtype=dtype)
    source = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=source, dtype=dtype).to(device)


def module_sha256(module: nn.Module) -> str:
    """sha256 of a module's ``state_dict``: each tensor's name, dtype, shape and bytes, in name order.

    Identifies the weights (and buffers) of any network, e.g. a classifier given as a sampling option.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


@torch.no_grad()
def update_ema(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * live`` for every parameter in one fused call; buffers are copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(live.parameters()), 1 - decay)
    for target, source in zip(ema.buffers(), live.buffers()):
        target.copy_(source)


def sample_uint8(
    model: ConditionalGenerator,
    labels: torch.Tensor | Sequence[int],
    *,
    generator: Randomness = None,
    batch_size: int = 256,
    **options: Any,
) -> torch.Tensor:
    """``uint8`` samples ``(len(labels), C, H, W)`` in ``[0, 255]`` on the CPU (as ``LabeledImages`` stores them), drawn ``batch_size`` labels at a time
    from one ``generator`` (or a list, one per label: see :func:`randn`); ``options`` go to
    ``model.sample`` (e.g. ``steps=20, guidance=1.5``).

    Every path that turns a generator into stored images (banks, the CLI, live mixing, the
    benchmarks) goes through here, so the same options give the same images everywhere.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    labels = model.check_labels(labels).cpu()
    model.check_sample_options(options)
    if not len(labels):
        return torch.empty((0, *model.image_shape), dtype=torch.uint8)
    chunks = []
    for start in range(0, len(labels), batch_size):
        rng = generator[start : start + batch_size] if isinstance(generator, (list, tuple)) else generator
        chunks.append(to_uint8(model.sample(labels[start : start + batch_size], generator=rng, **options)).cpu())
    return torch.cat(chunks)


GENERATORS: dict[str, type[ConditionalGenerator]] = {}


def register(cls: type[ConditionalGenerator]) -> type[ConditionalGenerator]:
    """Class decorator adding a family to :data:`GENERATORS` under ``cls.family``."""
    if cls.family in GENERATORS and GENERATORS[cls.family] is not cls:
        raise ValueError(f"generator family {cls.family!r} is already registered by {GENERATORS[cls.family].__name__}")
    GENERATORS[cls.family] = cls
    return cls


def get_family(name: str) -> type[ConditionalGenerator]:
    try:
        return GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator family {name!r}; known families: {sorted(GENERATORS)}") from None


def create(
    family: str,
    *,
    num_classes: int,
    image_shape: Sequence[int],
    class_names: Sequence[str] | None = None,
    **options: Any,
) -> ConditionalGenerator:
    """A new generator of ``family``; ``options`` are that family's config fields."""
    cls = get_family(family)
    config = cls.config_class.from_dict({"num_classes": num_classes, "image_shape": tuple(image_shape), **options})
    return cls(config, class_names)
