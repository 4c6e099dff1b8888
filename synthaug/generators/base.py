"""The interface every generator family implements, and the registry of families."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


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

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GeneratorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown {cls.__name__} option(s) {unknown}; valid options are {sorted(known)}")
        return cls(**values)


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

    def on_train_step_end(self) -> None:
        """Called after every optimiser step (e.g. to update EMA weights); nothing by default."""

    @abstractmethod
    def sample(self, labels: torch.Tensor | Sequence[int], *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images of the given classes, as floats in ``[-1, 1]`` of shape ``(len(labels), *image_shape)``."""

    def check_labels(self, labels: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """``labels`` as an ``int64`` tensor on this generator's device, after checking the range."""
        labels = torch.as_tensor(labels)
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
        """Write ``config.json`` and ``model.safetensors`` to the directory ``path``; see :func:`synthaug.load`."""
        from synthaug.io import save

        save(self, path)

    def extra_repr(self) -> str:
        return f"family={self.family!r}, num_classes={self.num_classes}, image_shape={self.image_shape}"


def randn(
    shape: Sequence[int],
    *,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise drawn from ``generator`` (on its own device), then moved to ``device``.

    Drawing on the generator's device keeps a CPU ``torch.Generator`` usable with a CUDA model and
    makes samples reproducible across devices.
    """
    source = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=source, dtype=dtype).to(device)


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
