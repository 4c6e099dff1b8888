"""Transforms that bring synthetic samples into a pipeline: plain callables a torchvision v2 pipeline can hold.

:class:`SyntheticReplace` works on one sample, :class:`SyntheticMix` on a collated batch. Neither
imports torchvision, and neither claims torchvision's ``Transform`` contract (``make_params`` /
``transform``): they are callables with methods of their own, so ``v2.Compose([...,
SyntheticReplace(bank, p=0.3), ...])`` and ``v2.RandomApply`` hold them like any function.

What torchvision users get (torchvision needs a CUDA-built torch on Linux, so synthaug never
imports it; these rules are what the tests check with tensor subclasses and dict samples):

* samples as v2 passes them along: ``(image, label)``, ``[image, label]``, two arguments, or a
  dict with ``"image"`` and ``"label"`` (other keys untouched);
* the image's type survives: PIL stays PIL, numpy stays numpy, and a tensor subclass such as
  ``tv_tensors.Image`` comes back as that subclass;
* :class:`SyntheticMix` goes before ``v2.MixUp`` / ``v2.CutMix``, which need integer labels.

Each transform owns a seeded ``torch.Generator`` (re-seeded once per DataLoader worker, so workers
do not repeat each other); randomness is drawn in ``draw_params`` and applied in ``apply``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch

from synthaug.augment import Teacher, _one_hot, teacher_targets
from synthaug.data.conventions import IS_SYNTHETIC, SyntheticFlagDict
from synthaug.data.labeled import label_to_int
from synthaug.mixup import beta_weights, cutmix, cutmix_boxes, mixup
from synthaug.recipe import as_recipe, not_buildable
from synthaug.seeding import WorkerGenerator, torch_generator
from synthaug.synthetic import ImageFormat, Source, as_source, check_classes, draw

IMAGE_KEY, LABEL_KEY = "image", "label"


def _like(output: torch.Tensor, reference: Any) -> Any:
    """``output`` as the tensor subclass of ``reference`` (``tv_tensors.Image`` stays an Image)."""
    if isinstance(reference, torch.Tensor) and type(reference) is not torch.Tensor:
        return output.as_subclass(type(reference))
    return output


def _unpack(inputs: tuple[Any, ...], who: str, what: str) -> tuple[Any, Any, Any]:
    """``(structure, image(s), label(s))`` from ``t(a, b)``, ``t((a, b))``, ``t([a, b])`` or ``t({"image": a, "label": b})``."""
    structure = inputs[0] if len(inputs) == 1 else inputs
    if isinstance(structure, Mapping):
        if IMAGE_KEY not in structure or LABEL_KEY not in structure:
            raise TypeError(f"a dict {what} needs {IMAGE_KEY!r} and {LABEL_KEY!r} entries, got {sorted(structure)}")
        return structure, structure[IMAGE_KEY], structure[LABEL_KEY]
    if isinstance(structure, (tuple, list)) and len(structure) == 2:
        return structure, structure[0], structure[1]
    raise TypeError(f"{who} takes (image, label): call it as t(a, b), t((a, b)) or t({{'image': a, 'label': b}})")


class _SyntheticTransform:
    def __init__(self, source: Source, *, seed: int, normalize: tuple[Sequence[float], Sequence[float]] | None) -> None:
        self.source = as_source(source)
        self.seed, self.normalize = seed, normalize
        self._rng = WorkerGenerator(seed)

    def _generator(self) -> torch.Generator:
        return self._rng.get()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return f"seed={self.seed}"


class SyntheticReplace(_SyntheticTransform):
    """With probability ``p``, replace a sample's image by a synthetic one of the same class.

    The synthetic image has the real image's type, dtype, layout and range (PIL in, PIL out;
    normalised floats need ``normalize=(mean, std)``). Call it as ``t(image, label)``,
    ``t((image, label))`` or ``t({"image": image, "label": label, ...})``.

    Example:
        >>> replace = SyntheticReplace(bank, p=0.3, seed=0)  # doctest: +SKIP
        >>> image, label = replace(image, label)  # doctest: +SKIP
    """

    def __init__(
        self,
        source: Source,
        p: float = 0.5,
        *,
        seed: int = 0,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        super().__init__(source, seed=seed, normalize=normalize)
        self.p = p

    def draw_params(self, label: int) -> dict[str, Any]:
        """Whether to replace, and the seed of the synthetic draw."""
        rng = self._generator()
        replace = bool(torch.rand((), generator=rng) < self.p)
        return {"replace": replace, "seed": int(torch.randint(2**62, (), generator=rng)) if replace else None}

    def apply(self, image: Any, label: int, params: dict[str, Any]) -> Any:
        """The image, or a synthetic image of ``label`` in its format."""
        if not params["replace"]:
            return image
        fmt = ImageFormat.of(image, normalize=self.normalize, where="the image")
        if fmt.shape != tuple(self.source.image_shape):
            raise ValueError(f"image shape {fmt.shape} does not match the synthetic source's {self.source.image_shape}")
        synthetic = draw(self.source, torch.tensor([label]), torch.Generator().manual_seed(params["seed"]))[0]
        return _like(fmt.convert(synthetic), image)

    def __call__(self, *inputs: Any) -> Any:
        sample, image, label = _unpack(inputs, "SyntheticReplace", "sample")
        index = label_to_int(label, "SyntheticReplace")
        check_classes(self.source, [index], "the label")
        out = self.apply(image, index, self.draw_params(index))
        if isinstance(sample, Mapping):
            return {**sample, IMAGE_KEY: out}
        return type(sample)((out, label)) if len(inputs) == 1 else (out, label)

    # The names before 0.2 borrowed torchvision's, with another contract.
    def make_params(self, label: int) -> dict[str, Any]:
        warnings.warn("SyntheticReplace.make_params is deprecated; use draw_params", FutureWarning, stacklevel=2)
        return self.draw_params(label)

    def transform(self, image: Any, label: int, params: dict[str, Any]) -> Any:
        warnings.warn("SyntheticReplace.transform is deprecated; use apply", FutureWarning, stacklevel=2)
        return self.apply(image, label, params)

    def forward(self, *inputs: Any) -> Any:
        warnings.warn("SyntheticReplace.forward is deprecated; call the transform", FutureWarning, stacklevel=2)
        return self(*inputs)

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={self.seed}"


class SyntheticMix(_SyntheticTransform):
    """Mixes synthetic samples into a collated batch: ``(images (B, C, H, W), labels (B,))`` or a dict.

    Modes: ``"append"`` (default) adds ``round(ratio * B)`` synthetic items with classes drawn from
    the batch; ``"replace"`` swaps that many randomly chosen items for synthetic ones of the same
    classes (the batch keeps its size); ``"mixup"`` blends that many items with a synthetic sample
    of a random batch class, ``lam ~ Beta(alpha, alpha)`` per item, and returns soft labels;
    ``"cutmix"`` pastes a box of such a sample into that many items instead (CutMix: the box covers
    ``1 - lam`` of the image; the label weights are the shares really kept).
    ``transform`` (e.g. an :class:`~synthaug.policies.AugmentPolicy`) is applied to the synthetic
    samples before they join the batch, so that they pass through the same augmentation as the real
    images (which the caller augments).
    Images keep their dtype, device, tensor subclass and range (``normalize=(mean, std)`` for
    normalised floats). After a call, ``last_synthetic_mask`` tells which items are synthetic.

    Labels follow :class:`~synthaug.augment.SyntheticAugment`'s rules: with a soft ``teacher`` or in
    ``"mixup"`` mode they become ``float32`` ``(B', num_classes)`` targets; a dict batch gets the
    ``"target"``, ``"weight"`` (``synthetic_weight`` for synthetic items) and ``"is_synthetic"`` entries
    (``"synthetic"`` still reads the last, with a FutureWarning, until 0.3).
    A ``synthetic_weight`` other than 1 needs a dict batch.

    Example:
        >>> mix = SyntheticMix(bank, ratio=0.25)  # doctest: +SKIP
        >>> for images, labels in loader:  # doctest: +SKIP
        ...     images, labels = mix(images, labels)
    """

    def __init__(
        self,
        source: Source,
        ratio: float = 0.5,
        *,
        mode: Literal["append", "replace", "mixup", "cutmix"] | None = None,
        seed: int = 0,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
        teacher: Teacher | None = None,
        temperature: float = 1.0,
        hard_labels: bool = False,
        synthetic_weight: float = 1.0,
        alpha: float = 1.0,
        transform: Callable[..., torch.Tensor] | None = None,
    ) -> None:
        if mode is None:
            warnings.warn("SyntheticMix's default mode is now 'append' (it was 'replace' before synthaug 0.2), as for "
                          "SyntheticAugment; pass mode= to choose and silence this warning", FutureWarning, stacklevel=2)  # fmt: skip
            mode = "append"
        if mode not in ("replace", "append", "mixup", "cutmix"):
            raise ValueError(f"mode must be 'append', 'replace', 'mixup' or 'cutmix', got {mode!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
            raise TypeError(f"ratio must be a number, got {type(ratio).__name__} {ratio!r}")
        upper = float("inf") if mode == "append" else 1.0
        if not 0.0 <= ratio <= upper or ratio == float("inf"):
            raise ValueError(f"ratio must lie in [0, {'inf)' if mode == 'append' else '1]'} for mode={mode!r}, got {ratio}")
        if not synthetic_weight >= 0 or not alpha > 0 or not temperature > 0:
            raise ValueError(f"synthetic_weight must be >= 0, alpha and temperature > 0; got {synthetic_weight}, {alpha}, {temperature}")
        if isinstance(teacher, torch.Tensor):
            raise ValueError("SyntheticMix draws its samples at random: give the teacher model, not probabilities per sample")
        super().__init__(source, seed=seed, normalize=normalize)
        self.ratio, self.mode, self.alpha, self.transform = ratio, mode, alpha, transform
        self.teacher, self.temperature, self.hard_labels, self.synthetic_weight = teacher, temperature, hard_labels, synthetic_weight
        self.last_synthetic_mask: torch.Tensor | None = None

    @classmethod
    def from_recipe(cls, recipe: Any, real: Any = None, *, seed: int = 0, **options: Any) -> SyntheticMix:
        """The batch mixing of a recipe that blends samples into batches (``recipe.json`` written by
        :func:`synthaug.recommend`, or a loaded :class:`~synthaug.recipe.Recipe`): its bank (or, for a real-copies
        baseline, ``real``, a :class:`~synthaug.data.LabeledImages`) at its ratio, mode and alpha, its samples
        passed through the recipe's augmentation. ``options`` are the constructor's others.

        Example:
            >>> mix = SyntheticMix.from_recipe("runs/recommend/recipe.json")  # doctest: +SKIP
            >>> images, targets = mix(images, labels)  # doctest: +SKIP
        """
        recipe = as_recipe(recipe)
        if not recipe.mixes_batches:
            raise ValueError(not_buildable(recipe, "SyntheticMix"))
        return cls(recipe.source(real), recipe.arm["ratio"], mode=recipe.arm["mix_mode"], alpha=recipe.arm["mix_alpha"],
                   seed=seed, transform=options.pop("transform", recipe.sample_transform(seed=seed)), **options)  # fmt: skip

    def draw_params(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Where synthetic items go, their classes, their images and (mixup) the blend weights."""
        rng = generator if generator is not None else self._generator()
        batch = len(labels)
        k = round(self.ratio * batch)
        labels = labels.cpu()
        if self.mode == "append":
            where = torch.arange(batch, batch + k)
            classes = labels[torch.randint(batch, (k,), generator=rng)] if batch else labels.new_zeros(0)
        else:
            where = torch.randperm(batch, generator=rng)[:k]
            classes = labels[where] if self.mode == "replace" else labels[torch.randint(batch, (k,), generator=rng)]
        params = {"where": where, "classes": classes, "images": draw(self.source, classes, rng) if k else None}
        if self.mode in ("mixup", "cutmix"):
            params["lam"] = beta_weights(self.alpha, k, rng)
        if self.mode == "cutmix":
            _, height, width = self.source.image_shape
            params["boxes"], params["lam"] = cutmix_boxes(params["lam"], height, width, rng)
        if self.transform is not None:
            params["transform_seed"] = int(torch.randint(2**62, (), generator=rng))
        return params

    def apply(self, images: torch.Tensor, labels: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(images, targets, synthetic mask)``; targets are labels, or ``(B', K)`` probabilities when soft."""
        where, classes, synthetic = params["where"], params["classes"], params["images"]
        k_classes = self.source.num_classes
        blend = self.mode in ("mixup", "cutmix")
        soft = blend or (self.teacher is not None and not self.hard_labels)
        size = len(labels) + (len(where) if self.mode == "append" else 0)
        mask = torch.zeros(size, dtype=torch.bool)
        targets = _one_hot(labels.cpu(), k_classes).to(labels.device) if soft else labels
        if synthetic is None:
            return images, targets, mask
        fmt = ImageFormat("tensor", tuple(images.shape[1:]), dtype=images.dtype, normalize=ImageFormat.normalization(self.normalize))
        converted = fmt.convert_batch(synthetic, device=images.device)
        if self.transform is not None:
            converted = self.transform(converted, generator=torch_generator(params["transform_seed"]))
        new = _one_hot(classes, k_classes)
        if self.teacher is not None:
            probabilities = teacher_targets(self.teacher, synthetic, k_classes, self.temperature)
            new = _one_hot(probabilities.argmax(1), k_classes) if self.hard_labels else probabilities
        new = new.to(labels.device)
        mask[where] = not blend
        if blend:
            if self.mode == "mixup":
                mixed, mixed_targets = mixup(images[where], targets[where], converted, new, params["lam"].to(images.device))
            else:
                mixed, mixed_targets = cutmix(images[where], targets[where], converted, new, params["boxes"], params["lam"])
            images, targets = images.clone(), targets.clone()
            images[where.to(images.device)], targets[where.to(labels.device)] = mixed.to(images.dtype), mixed_targets
            return images, targets, mask
        new_targets = new if soft else new.argmax(1).to(labels.dtype)
        if self.mode == "append":
            return torch.cat([images, converted]), torch.cat([targets, new_targets]), mask
        images, targets = images.clone(), targets.clone()
        images[where.to(images.device)], targets[where.to(labels.device)] = converted, new_targets
        return images, targets, mask

    def __call__(self, *inputs: Any, generator: torch.Generator | None = None) -> Any:
        batch, images, labels = _unpack(inputs, "SyntheticMix", "batch")
        if self.synthetic_weight != 1.0 and not isinstance(batch, Mapping):
            raise ValueError("synthetic_weight needs a dict batch ({'image': ..., 'label': ...}): the weights travel in its 'weight' entry")
        self._check(images, labels)
        out_images, targets, mask = self.apply(images, labels, self.draw_params(labels, generator))
        self.last_synthetic_mask = mask
        out_images = _like(out_images, images)
        if isinstance(batch, Mapping):
            k_classes = self.source.num_classes
            dense = targets if targets.is_floating_point() else _one_hot(targets.cpu(), k_classes).to(targets.device)
            label_out = targets if not targets.is_floating_point() else torch.cat([labels, dense[len(labels):].argmax(1).to(labels.dtype)])
            weight = torch.where(mask, self.synthetic_weight, 1.0).to(images.device)
            return SyntheticFlagDict({**batch, IMAGE_KEY: out_images, LABEL_KEY: label_out, "target": dense, "weight": weight,
                                      IS_SYNTHETIC: mask.to(images.device)})  # fmt: skip
        out = (out_images, targets)
        return type(batch)(out) if len(inputs) == 1 else out

    def _check(self, images: Any, labels: Any) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f"images must be a (B, C, H, W) tensor, got {getattr(images, 'shape', type(images).__name__)}")
        if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.is_floating_point():
            raise ValueError(
                "labels must be a 1-D integer tensor of class indices (not one-hot or soft labels), got "
                f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}; "
                "apply SyntheticMix before MixUp/CutMix"
            )
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if tuple(images.shape[1:]) != tuple(self.source.image_shape):
            raise ValueError(
                f"images have shape {tuple(images.shape[1:])} but the synthetic source makes {self.source.image_shape}"
            )
        if images.is_floating_point() and self.normalize is None and len(images) and (images.min() < 0 or images.max() > 1):
            raise ValueError("images are floats outside [0, 1]: pass normalize=(mean, std) as used by your transform")
        check_classes(self.source, labels.cpu(), "the batch")

    def make_params(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, Any]:
        warnings.warn("SyntheticMix.make_params is deprecated; use draw_params", FutureWarning, stacklevel=2)
        return self.draw_params(labels, generator)

    def forward(self, *inputs: Any, generator: torch.Generator | None = None) -> Any:
        warnings.warn("SyntheticMix.forward is deprecated; call the transform", FutureWarning, stacklevel=2)
        return self(*inputs, generator=generator)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, mode={self.mode!r}, seed={self.seed}"
