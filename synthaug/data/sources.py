"""Loaders from real data sources into :class:`LabeledImages`.

Every loader validates its input and says what is wrong and how to fix it.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from synthaug.data.labeled import LabeledImages, label_to_int

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

Size = int | tuple[int, int]


#: the digits' fixed training split: this many images of every class, drawn with DIGITS_SPLIT_SEED (the rest is the test split)
DIGITS_TRAIN_PER_CLASS = 50
DIGITS_SPLIT_SEED = 0


def load_digits(split: Literal["all", "train", "test"] = "all") -> LabeledImages:
    """scikit-learn's bundled handwritten digits: 1,797 grayscale 8x8 images, 10 classes.

    The 0..16 intensities are rescaled to 0..255. ``split="train"`` is a fixed stratified split of
    500 images (50 of every class, ``load_digits().split(50, seed=0)[0]``), ``"test"`` the other 1,297:
    the command line trains on the first (``synthaug fit --data digits``) and tests on the second
    (``synthaug evaluate`` / ``benchmark --data digits``), so that no score is taken on training images.
    """
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    data = LabeledImages(torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64)), tuple("0123456789"))
    if split == "all":
        return data
    train, test = data.split(DIGITS_TRAIN_PER_CLASS, seed=DIGITS_SPLIT_SEED)
    return train if split == "train" else test


def load_fashion_mnist(root: str | os.PathLike | None = None, split: Literal["train", "test"] = "train") -> LabeledImages:
    """Fashion-MNIST from its IDX files (28x28 grayscale, 10 classes; 60,000 train / 10,000 test).

    Args:
        root: folder with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``. Defaults to
            ``$SYNTHAUG_FASHION_MNIST`` or where Debian's ``dataset-fashion-mnist`` installs them.
        split: ``"train"`` or ``"test"``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root if root is not None else os.environ.get("SYNTHAUG_FASHION_MNIST", FASHION_MNIST_ROOT))
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find_idx(root, f"{prefix}-images-idx3-ubyte"), ndim=3)
    labels = _read_idx(_find_idx(root, f"{prefix}-labels-idx1-ubyte"), ndim=1)
    if len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST in {root}: {len(images)} images but {len(labels)} labels; the files are corrupt")
    return LabeledImages(
        torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES
    )


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root}. Install Debian's package "
        "(`apt-get install dataset-fashion-mnist`, which puts it in /usr/share/datasets/fashion-mnist), "
        "or pass root= (or set SYNTHAUG_FASHION_MNIST) to a folder holding the four IDX files"
    )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (the MNIST format), checking its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"cannot read {path}: {err}; the file is corrupt or truncated") from err
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes([0, 0, 8, ndim]):
        raise ValueError(f"{path} is not an unsigned-byte IDX file with {ndim} dimensions (bad magic number)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but the file holds {len(raw) - header} bytes; it is truncated")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def from_arrays(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor | Sequence[int],
    class_names: Sequence[str] | None = None,
    *,
    layout: Literal["NCHW", "NHWC"] | None = None,
) -> LabeledImages:
    """Images and labels from numpy arrays or tensors.

    Args:
        images: ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` with ``C`` in ``{1, 3}``; ``uint8``
            (or any integer type) in ``[0, 255]``, or floats in ``[0, 1]`` (stored as ``uint8``; a
            generator's ``[-1, 1]`` samples convert with ``signed_to_unit``).
        labels: ``N`` integer class indices, or ``N`` class names (strings).
        class_names: one per class; defaults to ``"0"``, ``"1"``, ... up to the largest label, or to the
            sorted distinct names when the labels are names.
        layout: channel position when the shape alone is ambiguous; inferred otherwise.
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).detach().cpu()
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W), (N, C, H, W) or (N, H, W, C), got {tuple(x.shape)}")
    layout = layout or _infer_layout(tuple(x.shape))
    if layout == "NHWC":
        x = x.permute(0, 3, 1, 2)
    elif layout != "NCHW":
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    y, class_names = _label_indices(labels, class_names, len(x))
    return LabeledImages(_to_uint8(x, what="images").contiguous(), y, tuple(class_names))


def _label_indices(
    labels: np.ndarray | torch.Tensor | Sequence[Any], class_names: Sequence[str] | None, n: int
) -> tuple[torch.Tensor, Sequence[str]]:
    """``int64`` class indices and the class names, from integer labels or from class names as labels."""
    raw = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if raw.ndim != 1 or len(raw) != n:
        raise ValueError(f"labels must be 1-D with one label per image ({n}), got shape {tuple(raw.shape)}")
    if raw.dtype.kind in "USO":  # names as labels: "cat", "dog", ...
        names = [str(v) for v in raw]
        class_names = list(class_names) if class_names is not None else sorted(set(names))
        index = {name: i for i, name in enumerate(class_names)}
        unknown = sorted(set(names) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not among class_names {list(class_names)[:12]}")
        return torch.tensor([index[name] for name in names], dtype=torch.int64), class_names
    if raw.dtype.kind not in "iuf" or raw.dtype == np.bool_:
        raise ValueError(f"labels must be integer class indices or class names, got dtype {raw.dtype}")
    if raw.dtype.kind == "f" and not (np.isfinite(raw).all() and np.array_equal(raw, np.round(raw))):
        raise ValueError("labels must be integer class indices, got non-integer floats")
    y = torch.from_numpy(raw.astype(np.int64))
    if class_names is None:
        class_names = [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
    return y, class_names


def _infer_layout(shape: tuple[int, ...]) -> Literal["NCHW", "NHWC"]:
    channels_first, channels_last = shape[1] in (1, 3), shape[3] in (1, 3)
    if channels_first and not channels_last:
        return "NCHW"
    if channels_last and not channels_first:
        return "NHWC"
    raise ValueError(f"cannot tell whether images of shape {shape} are NCHW or NHWC; pass layout='NCHW' or 'NHWC'")


def _to_uint8(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{what} must be integers in [0, 255] or floats in [0, 1], got dtype {x.dtype}")
    if x.is_floating_point():
        finite = torch.isfinite(x.flatten(1)).all(1) if x.ndim > 1 else torch.isfinite(x)[None]
        if not finite.all():
            first = int(torch.nonzero(~finite)[0])
            raise ValueError(f"{what} hold NaN or infinite values (first in image {first}); fix or drop those images")
        lo, hi = (float(x.min()), float(x.max())) if x.numel() else (0.0, 1.0)
        if lo < 0.0 or hi > 1.0:
            fix = ("convert a generator's [-1, 1] samples with synthaug.data.signed_to_unit" if lo >= -1.0 and hi <= 1.0
                   else "undo any normalisation first")  # fmt: skip
            raise ValueError(f"float {what} must lie in [0, 1], found values in [{lo:.3g}, {hi:.3g}]; {fix} (or pass uint8 in [0, 255])")
        return x.mul(255.0).round().to(torch.uint8)
    lo, hi = (int(x.min()), int(x.max())) if x.numel() else (0, 0)
    if lo < 0 or hi > 255:
        raise ValueError(f"integer {what} must lie in [0, 255], found values in [{lo}, {hi}]")
    return x.to(torch.uint8)


def from_image_folder(
    root: str | os.PathLike,
    *,
    resize: Size | None = None,
    channels: Literal[1, 3] | None = None,
) -> LabeledImages:
    """A folder with one sub-folder of images (PNG, JPEG, ...) per class, named after the class.

    Args:
        root: the folder; classes are its sub-folders in sorted order.
        resize: ``size`` or ``(height, width)`` every image is resized to; required when sizes differ.
        channels: 1 (grayscale) or 3 (RGB) to convert every image; required when modes differ.
    """
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{root} has no sub-folders; put each class's images in a sub-folder named after the class")
    items: list[tuple[Any, int, str]] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"class folder {class_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for path in files:
            try:
                with Image.open(path) as img:
                    img.load()
                    items.append((img.copy(), label, str(path)))
            except OSError as err:
                raise ValueError(f"cannot read image {path}: {err}") from err
    return _stack(items, [d.name for d in class_dirs], resize=resize, channels=channels)


def from_dataset(
    dataset: Any,
    class_names: Sequence[str] | None = None,
    *,
    resize: Size | None = None,
    channels: Literal[1, 3] | None = None,
) -> LabeledImages:
    """Any map-style dataset (e.g. a torch ``Dataset``) whose items are ``(image, label)``.

    Images may be PIL images, numpy ``(H, W)`` / ``(H, W, C)`` arrays, or ``(C, H, W)`` tensors
    (``uint8``, or floats in ``[0, 1]``). ``class_names`` defaults to ``dataset.classes`` when present.
    """
    try:
        n = len(dataset)
    except TypeError as err:
        raise TypeError(f"dataset must have a length (a map-style dataset), got {type(dataset).__name__}") from err
    items = []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"dataset item {i} must be an (image, label) pair, got {type(item).__name__}")
        items.append((item[0], item[1], f"item {i}"))
    if class_names is None:
        class_names = getattr(dataset, "classes", None)
    return _stack(items, class_names, resize=resize, channels=channels)


def from_hf(
    dataset: Any,
    image_column: str = "image",
    label_column: str = "label",
    *,
    resize: Size | None = None,
    channels: Literal[1, 3] | None = None,
) -> LabeledImages:
    """A HuggingFace ``datasets.Dataset``; class names come from a ``ClassLabel`` label column."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError("from_hf needs the `datasets` package: pip install 'synthaug[hf]'") from err
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"from_hf expects a datasets.Dataset, got {type(dataset).__name__}")
    missing = [c for c in (image_column, label_column) if c not in dataset.column_names]
    if missing:
        raise ValueError(f"columns {missing} not in the dataset; it has {dataset.column_names}")
    feature = dataset.features[label_column]
    class_names = feature.names if isinstance(feature, datasets.ClassLabel) else None
    images, labels = dataset[image_column], dataset[label_column]
    items = [(img, lab, f"row {i}") for i, (img, lab) in enumerate(zip(images, labels))]
    return _stack(items, class_names, resize=resize, channels=channels)


def _stack(
    items: list[tuple[Any, Any, str]],
    class_names: Sequence[str] | None,
    *,
    resize: Size | None,
    channels: Literal[1, 3] | None,
) -> LabeledImages:
    if not items:
        raise ValueError("the dataset is empty: it needs at least one image per class")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    size = (resize, resize) if isinstance(resize, int) else tuple(resize) if resize is not None else None
    images, labels = [], []
    for image, label, where in items:
        x = _image_to_chw_uint8(image, where)
        if channels is not None and x.shape[0] != channels:
            x = x.mean(0, keepdim=True, dtype=torch.float32).round().to(torch.uint8) if channels == 1 else x.expand(3, -1, -1)
        if size is not None and tuple(x.shape[1:]) != size:
            x = F.interpolate(x[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]
            x = x.round().clamp(0, 255).to(torch.uint8)
        images.append(x)
        labels.append(label_to_int(label, where))
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        channel_counts = {s[0] for s in shapes}
        sizes = {s[1:] for s in shapes}
        fixes = []
        if len(channel_counts) > 1:
            fixes.append(f"channels={max(channel_counts)} (found channel counts {sorted(channel_counts)})")
        if len(sizes) > 1:
            fixes.append(f"resize=(H, W) (found sizes {sorted(sizes)[:5]}{' ...' if len(sizes) > 5 else ''})")
        raise ValueError(f"images have different shapes; pass {' and '.join(fixes)}")
    y = torch.tensor(labels, dtype=torch.int64)
    if class_names is None:
        class_names = [str(i) for i in range(int(y.max()) + 1)]
    return LabeledImages(torch.stack(images).contiguous(), y, tuple(class_names))


def _image_to_chw_uint8(image: Any, where: str) -> torch.Tensor:
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK", "YCbCr", "LA", "HSV") else "L")
        x = torch.from_numpy(np.array(image, dtype=np.uint8))
        return x[None] if x.ndim == 2 else x.permute(2, 0, 1).contiguous()
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise ValueError(f"{where}: numpy images must be (H, W) or (H, W, C) with C in 1 or 3, got {image.shape}")
        return _to_uint8(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), what=f"{where} image")
    if isinstance(image, torch.Tensor):
        if image.ndim == 2:
            image = image[None]
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"{where}: tensor images must be (C, H, W) with C in 1 or 3, got {tuple(image.shape)}")
        return _to_uint8(image.detach().cpu(), what=f"{where} image")
    raise TypeError(f"{where}: expected an image (PIL.Image, numpy array or tensor), got {type(image).__name__}")
