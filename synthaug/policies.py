"""Automatic augmentation policies on a batch: TrivialAugment and RandAugment, through kornia.

The strongest cheap baselines a practitioner reaches for before synthetic data: TrivialAugment
(Müller & Hutter 2021, https://arxiv.org/abs/2103.10158) applies one operation, drawn uniformly with
a uniformly drawn magnitude, to each image; RandAugment (Cubuk et al. 2020,
https://arxiv.org/abs/1909.13719) applies ``num_ops`` operations at one fixed ``magnitude`` (0-30).

The operations and their magnitude ranges are kornia's (``kornia.augmentation.auto``, an optional
dependency: ``pip install 'synthaug[policies]'``). What this module adds, and why:

* **a draw per image**, as in both papers and in torchvision: kornia's policies pick one operation
  for the whole batch, so 64 images share it. Here every image draws its own operation(s) and the
  batch is applied op by op on the rows that drew it (TrivialAugment also has the paper's identity
  operation, which kornia leaves out);
* **owned randomness**: kornia draws magnitudes from torch's global RNG; each call here runs inside
  ``torch.random.fork_rng`` seeded from the policy's own generator (or the one passed in), so a
  policy is deterministic for its seed and leaves the global RNG untouched;
* **any range a batch comes in**: uint8 images come back uint8 (rounded), floats in ``[0, 1]``
  come back floats; ``normalize=(mean, std)`` for normalised batches. Colour operations are the
  identity on one-channel images (as in torchvision).

A policy is a plain callable on a ``(B, C, H, W)`` batch, so it goes anywhere a batch passes: in a
user's own loop, in :func:`~synthaug.classifier.train_classifier` (``policy=``), or as the
``transform`` of :class:`~synthaug.transforms.SyntheticMix` so that synthetic samples pass through the
same policy as real ones.

Example:
    >>> policy = AugmentPolicy("trivial", seed=0)  # doctest: +SKIP
    >>> images = policy(images)  # uint8 or [0, 1] floats, (B, C, H, W)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from synthaug.seeding import WorkerGenerator

PolicyName = Literal["trivial", "randaugment"]
POLICIES: tuple[str, ...] = ("trivial", "randaugment")
#: RandAugment's magnitude scale (kornia's and the paper's): 0 is no change, 30 the full range
MAX_MAGNITUDE = 30
_COLOUR_OPS = ("color",)  # need three channels; the identity on grey images


def _kornia() -> Any:
    try:
        from kornia.augmentation import auto
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("augmentation policies need kornia: pip install 'synthaug[policies]'") from error
    return auto


class AugmentPolicy:
    """TrivialAugment or RandAugment on a batch of images, one draw per image, seeded.

    Args:
        name: ``"trivial"`` (TrivialAugment) or ``"randaugment"``.
        num_ops: RandAugment's operations per image (distinct, applied in the order drawn).
        magnitude: RandAugment's magnitude, in ``(0, 30)`` (9 in the paper's ImageNet setting).
        seed: the policy's own stream (re-seeded per DataLoader worker); a call may pass ``generator=``.
        normalize: ``(mean, std)`` of a normalised float batch (undone before, redone after).
    """

    def __init__(
        self,
        name: PolicyName = "trivial",
        *,
        num_ops: int = 2,
        magnitude: float = 9,
        seed: int = 0,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        if name not in POLICIES:
            raise ValueError(f"unknown augmentation policy {name!r}; choose from {list(POLICIES)}")
        if isinstance(magnitude, bool) or not isinstance(magnitude, (int, float)) or not 0 < magnitude < MAX_MAGNITUDE:
            raise ValueError(f"magnitude must be a number in (0, {MAX_MAGNITUDE}) (RandAugment's scale), got {magnitude!r}")
        auto = _kornia()
        if name == "trivial":
            from kornia.augmentation.auto.trivial_augment.trivial_augment import default_policy

            self._ops = [None] + [auto.TrivialAugment(policy=[sub]) for sub in default_policy]
            self._names = ["identity"] + [sub[0][0] for sub in default_policy]
        else:
            from kornia.augmentation.auto.rand_augment.rand_augment import default_policy

            self._ops = [auto.RandAugment(n=1, m=magnitude, policy=[sub]) for sub in default_policy]
            self._names = [sub[0][0] for sub in default_policy]
        if isinstance(num_ops, bool) or not isinstance(num_ops, int) or not 1 <= num_ops <= len(self._ops):
            raise ValueError(f"num_ops must be an integer in [1, {len(self._ops)}], got {num_ops!r}")
        self.name, self.num_ops, self.magnitude, self.seed = name, num_ops, magnitude, seed
        self.normalize = normalize
        self._rng = WorkerGenerator(seed, "policy", name)

    @property
    def operations(self) -> list[str]:
        """The names of the operations an image can draw."""
        return list(self._names)

    def draw_params(self, batch: int, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Each image's operations (``(B, steps)`` indices) and the seed of kornia's magnitude draws."""
        rng = generator if generator is not None else self._rng.get()
        steps = 1 if self.name == "trivial" else self.num_ops
        if steps == 1:
            ops = torch.randint(len(self._ops), (batch, 1), generator=rng)
        else:  # distinct operations per image, as kornia's RandAugment draws them per batch
            ops = torch.rand(batch, len(self._ops), generator=rng).argsort(dim=1)[:, :steps]
        return {"ops": ops, "seed": int(torch.randint(2**62, (), generator=rng))}

    def apply(self, images: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """The batch with each image's drawn operations applied."""
        x = self._to_unit(images)
        grey = x.shape[1] == 1
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(params["seed"])
            for step in range(params["ops"].shape[1]):
                column = params["ops"][:, step]
                for index in column.unique().tolist():
                    op = self._ops[index]
                    if op is None or (grey and self._names[index] in _COLOUR_OPS):
                        continue
                    rows = torch.nonzero(column == index).flatten().to(x.device)
                    x[rows] = op(x[rows]).clamp(0, 1)
        return self._from_unit(x, images)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f"a policy takes a (B, C, H, W) batch, got {getattr(images, 'shape', type(images).__name__)}")
        if len(images) == 0:
            return images
        return self.apply(images, self.draw_params(len(images), generator))

    def _to_unit(self, images: torch.Tensor) -> torch.Tensor:
        if not images.is_floating_point():
            return images.float() / 255
        x = images.float()
        if self.normalize is not None:
            mean, std = (torch.as_tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in self.normalize)
            return (x * std + mean).clamp(0, 1)
        low, high = float(x.min()), float(x.max())
        if low < -1e-6 or high > 1 + 1e-6 or not math.isfinite(low + high):
            raise ValueError(f"float images must lie in [0, 1] (got [{low:.3g}, {high:.3g}]); pass normalize=(mean, std) "
                             "for normalised batches, or give uint8 images")  # fmt: skip
        return x.clone()

    def _from_unit(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if not reference.is_floating_point():
            return (x * 255).round().clamp(0, 255).to(reference.dtype)
        if self.normalize is not None:
            mean, std = (torch.as_tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in self.normalize)
            x = (x - mean) / std
        return x.to(reference.dtype)

    def __repr__(self) -> str:
        extra = f", num_ops={self.num_ops}, magnitude={self.magnitude}" if self.name == "randaugment" else ""
        return f"AugmentPolicy({self.name!r}{extra}, seed={self.seed})"


def make_policy(spec: str | AugmentPolicy | None, *, seed: int = 0) -> AugmentPolicy | None:
    """A policy from a name (``"trivial"``, ``"randaugment"``), a policy (returned as is) or ``None``."""
    if spec is None or isinstance(spec, AugmentPolicy):
        return spec
    if isinstance(spec, str):
        return AugmentPolicy(spec, seed=seed)  # type: ignore[arg-type]
    raise TypeError(f"a policy is a name from {list(POLICIES)} or an AugmentPolicy, got {type(spec).__name__}")
