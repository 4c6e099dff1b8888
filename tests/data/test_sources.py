"""Every data source on real data, and every way a source can be given bad input."""

import gzip
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.data import (
    FASHION_MNIST_CLASSES,
    LabeledImages,
    from_arrays,
    from_dataset,
    from_hf,
    from_image_folder,
    load_fashion_mnist,
)


def test_digits(digits):
    assert len(digits) == 1797 and digits.image_shape == (1, 8, 8) and digits.num_classes == 10
    assert digits.images.dtype == torch.uint8 and digits.labels.dtype == torch.int64
    assert digits.images.max() == 255 and digits.images.min() == 0  # 0..16 rescaled to 0..255
    assert digits.class_counts() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


@pytest.mark.parametrize(("split", "n"), [("train", 60_000), ("test", 10_000)])
def test_fashion_mnist(fashion_root, split, n):
    data = load_fashion_mnist(split=split)
    assert len(data) == n and data.image_shape == (1, 28, 28) and data.class_names == FASHION_MNIST_CLASSES
    assert data.class_counts() == [n // 10] * 10


def test_fashion_mnist_from_uncompressed_copy(fashion_root, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(fashion_root / f"{name}.gz") as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    assert torch.equal(load_fashion_mnist(tmp_path, split="test").images, load_fashion_mnist(split="test").images)


def test_fashion_mnist_missing_directory_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_fashion_mnist_truncated_file(fashion_root, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(fashion_root / f"{name}.gz", tmp_path)
    raw = gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz").read()
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist(tmp_path, split="test")


def _write_folder(digits, root, *, mode="L", fmt="png", per_class=5):
    for c in range(digits.num_classes):
        (root / f"class_{c}").mkdir(parents=True)
        for k, i in enumerate(torch.nonzero(digits.labels == c).flatten()[:per_class].tolist()):
            img = Image.fromarray(digits.images[i, 0].numpy(), mode="L").convert(mode)
            img.save(root / f"class_{c}" / f"{k}.{fmt}")


def test_image_folder_grayscale_png_is_lossless(digits, tmp_path):
    _write_folder(digits, tmp_path)
    data = from_image_folder(tmp_path)
    assert data.class_names == tuple(f"class_{c}" for c in range(10)) and data.class_counts() == [5] * 10
    first_zero = digits.images[torch.nonzero(digits.labels == 0).flatten()[0]]
    assert torch.equal(data.images[0], first_zero)


def test_image_folder_rgb_jpeg_with_resize(digits, tmp_path):
    _write_folder(digits, tmp_path, mode="RGB", fmt="jpg")
    data = from_image_folder(tmp_path, resize=16)
    assert data.image_shape == (3, 16, 16) and len(data) == 50


def test_image_folder_mixed_sizes_need_resize(digits, tmp_path):
    _write_folder(digits, tmp_path)
    Image.new("L", (12, 12)).save(tmp_path / "class_3" / "big.png")
    with pytest.raises(ValueError, match=r"resize=\(H, W\)"):
        from_image_folder(tmp_path)
    assert from_image_folder(tmp_path, resize=(8, 8)).image_shape == (1, 8, 8)


def test_image_folder_mixed_channels_need_channels(digits, tmp_path):
    _write_folder(digits, tmp_path)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "class_3" / "rgb.png")
    with pytest.raises(ValueError, match="channels=3"):
        from_image_folder(tmp_path)
    assert from_image_folder(tmp_path, channels=1).image_shape == (1, 8, 8)


def test_image_folder_with_an_empty_class(digits, tmp_path):
    _write_folder(digits, tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        from_image_folder(tmp_path)


def test_image_folder_with_a_broken_image(digits, tmp_path):
    _write_folder(digits, tmp_path)
    (tmp_path / "class_1" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        from_image_folder(tmp_path)


@pytest.mark.parametrize("to", [np.asarray, torch.as_tensor])
@pytest.mark.parametrize("layout", ["NHW", "NCHW", "NHWC", "float"])
def test_from_arrays_round_trips_digits(digits, to, layout):
    x = digits.images.numpy()
    arrays = {"NHW": x[:, 0], "NCHW": x, "NHWC": x.transpose(0, 2, 3, 1), "float": x / 255.0}
    data = from_arrays(to(arrays[layout]), to(digits.labels.numpy()), digits.class_names)
    assert torch.equal(data.images, digits.images) and torch.equal(data.labels, digits.labels)


def test_from_arrays_ambiguous_layout_asks_for_it():
    x = np.zeros((4, 3, 5, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="layout="):
        from_arrays(x, [0, 1, 0, 1])
    assert from_arrays(x, [0, 1, 0, 1], layout="NHWC").image_shape == (3, 3, 5)


def test_from_arrays_rejects_normalised_floats(digits):
    normalised = (digits.images.float() / 255 - 0.5) / 0.25
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        from_arrays(normalised, digits.labels)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_from_arrays_refuses_nan_and_inf_naming_the_first_bad_image(digits, bad):
    images = digits.images[:20].float() / 255
    images[13, 0, 2, 2] = bad
    images[17, 0, 0, 0] = bad
    with pytest.raises(ValueError, match="NaN or infinite values .first in image 13."):
        from_arrays(images, digits.labels[:20])


def test_from_arrays_takes_class_names_as_labels(digits):
    names = np.array(["cat", "dog", "owl", "dog"])
    data = from_arrays(digits.images[:4], names)
    assert data.class_names == ("cat", "dog", "owl") and data.labels.tolist() == [0, 1, 2, 1]
    data = from_arrays(digits.images[:4], list(names), ["owl", "dog", "cat"])
    assert data.labels.tolist() == [2, 1, 0, 1]
    with pytest.raises(ValueError, match=r"labels \['cat'\] are not among class_names"):
        from_arrays(digits.images[:4], names, ["owl", "dog"])
    with pytest.raises(ValueError, match="integer class indices or class names, got dtype bool"):
        from_arrays(digits.images[:4], np.array([True, False, True, False]))


def test_labels_outside_the_classes(digits):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*\[3, 4, 5, 6, 7, 8, 9\]"):
        from_arrays(digits.images[:50], digits.labels[:50], ["0", "1", "2"])
    with pytest.raises(ValueError, match=r"\[-1\]"):
        from_arrays(digits.images[:3], [0, -1, 1])


def test_a_class_with_zero_images(digits):
    keep = digits.labels != 4
    with pytest.raises(ValueError, match=r"class 4 \('4'\) has no images"):
        from_arrays(digits.images[keep], digits.labels[keep], digits.class_names)


def test_empty_dataset():
    with pytest.raises(ValueError, match="empty"):
        from_arrays(np.zeros((0, 1, 8, 8), np.uint8), np.zeros(0, np.int64), ["a"])
    with pytest.raises(ValueError, match="empty"):
        from_dataset([])


class _DigitsDataset(torch.utils.data.Dataset):
    """A user's torch Dataset returning images in one of the usual forms."""

    def __init__(self, digits, form):
        self.digits, self.form = digits, form
        self.classes = [f"digit {c}" for c in range(10)]

    def __len__(self):
        return 60

    def __getitem__(self, i):
        image, label = self.digits[i]
        if self.form == "pil":
            return Image.fromarray(image[0].numpy(), mode="L"), label
        if self.form == "numpy_hwc":
            return image.permute(1, 2, 0).numpy(), label
        if self.form == "float_chw":  # what torchvision's ToTensor gives
            return image.float() / 255, torch.tensor(label)
        return image, label


@pytest.mark.parametrize("form", ["pil", "numpy_hwc", "float_chw", "uint8_chw"])
def test_from_torch_dataset(digits, form):
    data = from_dataset(_DigitsDataset(digits, form))
    assert data.class_names == tuple(f"digit {c}" for c in range(10))
    assert torch.equal(data.images, digits.images[:60]) and torch.equal(data.labels, digits.labels[:60])


@pytest.mark.parametrize(
    ("item", "match"),
    [("just a string", r"item 0 must be an \(image, label\) pair"), (("text", 1), "expected an image"),
     ((np.zeros((8, 8, 5), np.uint8), 1), "C in 1 or 3"), ((np.zeros((8, 8), np.uint8), "cat"), "integer class index")],
)  # fmt: skip
def test_from_dataset_rejects_non_image_items(item, match):
    with pytest.raises((TypeError, ValueError), match=match):
        from_dataset([item])


def test_from_hf(digits):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"img": datasets.Image(), "digit": datasets.ClassLabel(names=list("abcdefghij"))})
    rows = {"img": [Image.fromarray(x[0].numpy(), mode="L") for x in digits.images[:40]], "digit": digits.labels[:40].tolist()}
    hf = datasets.Dataset.from_dict(rows, features=features)
    data = from_hf(hf, image_column="img", label_column="digit")
    assert data.class_names == tuple("abcdefghij")
    assert torch.equal(data.images, digits.images[:40]) and torch.equal(data.labels, digits.labels[:40])
    with pytest.raises(ValueError, match=r"columns \['image'\] not in the dataset"):
        from_hf(hf, label_column="digit")


def test_subset_is_stratified_and_seeded(digits):
    a, b, c = digits.subset(7, seed=1), digits.subset(7, seed=1), digits.subset(7, seed=2)
    assert a.class_counts() == [7] * 10 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    with pytest.raises(ValueError, match="some classes have fewer"):
        digits.subset(500)


def test_labeled_images_validates_dtype(digits):
    with pytest.raises(ValueError, match="uint8 tensor of shape"):
        LabeledImages(digits.images.float(), digits.labels, digits.class_names)


def test_split_holds_out_the_rest(digits):
    train, rest = digits.split(10, seed=0)
    assert torch.equal(train.images, digits.subset(10, seed=0).images)
    assert len(train) + len(rest) == len(digits) and rest.class_counts() == [n - 10 for n in digits.class_counts()]
    with pytest.raises(ValueError, match="leaves no other images"):
        digits.split(174)


def test_long_tailed_subset_follows_the_profile_and_the_seed(digits):
    from synthaug.data.labeled import long_tailed_counts

    lt = digits.subset_long_tailed(150, 10, seed=3)
    counts = lt.class_counts()
    assert sorted(counts, reverse=True) == [int(150 * 10 ** (-i / 9)) for i in range(10)] and max(counts) == 150
    assert counts == long_tailed_counts(10, 150, 10, seed=3) and counts != long_tailed_counts(10, 150, 10, seed=4)
    assert torch.equal(lt.images, digits.subset_long_tailed(150, 10, seed=3).images)
    step = digits.subset_long_tailed(100, 4, profile="step", class_order=list(range(10)))
    assert step.class_counts() == [100] * 5 + [25] * 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"imbalance": 0.5}, "imbalance must be a finite number >= 1"),
     ({"imbalance": 500}, r"leaves class\(es\) \[.*\] with no image"),
     ({"max_per_class": 300, "imbalance": 2}, r"asked for \{.*\} images per class but some classes have fewer: \{'0': 178"),
     ({"profile": "linear"}, "profile must be"), ({"class_order": [0, 1]}, "every class index")],
)  # fmt: skip
def test_bad_long_tailed_requests(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        digits.subset_long_tailed(**{"max_per_class": 150, "imbalance": 10, **kwargs})


def test_holdout_keeps_a_share_of_every_class(digits):
    train, test = digits.holdout(0.2, seed=0)
    assert [a + b for a, b in zip(train.class_counts(), test.class_counts())] == digits.class_counts()
    assert all(abs(t - round(0.2 * n)) <= 0 for t, n in zip(test.class_counts(), digits.class_counts()))
