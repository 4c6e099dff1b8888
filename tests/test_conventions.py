"""The conventions of issue 23: image value ranges and their named conversions, torchvision's names
(``classes``/``targets``), ``split`` vs ``split=``, Lightning's ``enable_progress_bar``, and
``train_classifier`` reading shape and classes from the dataset."""

import dataclasses
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, default_collate

import synthaug
from synthaug.augment import SyntheticAugment
from synthaug.bank import SyntheticBank
from synthaug.classifier import train_classifier
from synthaug.data import (
    from_arrays,
    signed_to_unit,
    to_signed_unit,
    to_uint8,
    uint8_to_unit,
    unit_to_signed,
    unit_to_uint8,
)
from synthaug.data.conventions import SyntheticFlagDict
from tests.conftest import TINY_VAE

# --- image values ------------------------------------------------------------------------------


def test_conversions_between_the_three_ranges_agree(digits):
    images = digits.images[:50]
    unit = uint8_to_unit(images)
    assert unit.dtype == torch.float32 and float(unit.min()) == 0.0 and float(unit.max()) == 1.0
    assert torch.equal(unit_to_uint8(unit), images)
    assert torch.allclose(signed_to_unit(to_signed_unit(images)), unit, atol=1e-6)
    assert torch.allclose(unit_to_signed(unit), to_signed_unit(images), atol=1e-6)
    assert torch.equal(to_uint8(unit_to_signed(unit)), images)
    assert torch.equal(from_arrays(unit, digits.labels[:50]).images, images)  # floats in [0, 1] in, uint8 stored


def test_conversions_refuse_the_wrong_range_or_dtype(digits):
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], found values in \[-1, 1\]; convert .*signed_to_unit"):
        unit_to_uint8(to_signed_unit(digits.images[:4]))
    with pytest.raises(TypeError, match="unit_to_uint8 takes float images .* got dtype torch.uint8"):
        unit_to_uint8(digits.images[:4])
    with pytest.raises(TypeError, match="uint8_to_unit takes uint8 images"):
        uint8_to_unit(torch.zeros(2))
    with pytest.raises(TypeError, match="for uint8 use uint8_to_unit"):
        signed_to_unit(digits.images[:4])
    with pytest.raises(ValueError, match=r"signed_to_unit"):  # a generator's samples given to from_arrays
        from_arrays(to_signed_unit(digits.images[:20]), digits.labels[:20])
    with pytest.raises(ValueError, match="undo any normalisation"):
        from_arrays(to_signed_unit(digits.images[:20]) * 3, digits.labels[:20])


def test_generator_samples_convert_to_the_stored_and_user_ranges(digits_generator):
    labels = torch.arange(10)
    samples = digits_generator.sample(labels, generator=torch.Generator().manual_seed(0))  # model space, [-1, 1]
    assert samples.min() >= -1 and samples.max() <= 1
    stored = synthaug.generators.sample_uint8(digits_generator, labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(to_uint8(samples), stored)
    assert torch.allclose(signed_to_unit(samples), uint8_to_unit(stored), atol=0.5 / 255 + 1e-6)


# --- torchvision's names -------------------------------------------------------------------------


def test_labeled_images_have_classes_and_targets(digits):
    assert digits.classes == list(digits.class_names) and digits.targets is digits.labels
    with pytest.raises(dataclasses.FrozenInstanceError):
        digits.targets = torch.zeros(3)  # read-only, like every field of the frozen dataset
    with pytest.raises(AttributeError):
        digits.classes = ["a"]


def test_banks_and_mixed_datasets_have_classes_and_targets(digits, digits_bank):
    assert digits_bank.classes == list(digits_bank.class_names) and torch.equal(digits_bank.targets, digits_bank.labels)
    with pytest.raises(AttributeError):
        digits_bank.classes = ["a"]
    view = digits_bank.select([5, 100, 200])
    assert view.targets.tolist() == [int(digits_bank.labels[i]) for i in (5, 100, 200)]
    small = digits.subset(5, seed=0)
    aug = SyntheticAugment(small, digits_bank, ratio=1.0, seed=0)
    assert aug.classes == small.classes and aug.num_classes == 10 and aug.image_shape == small.image_shape
    assert aug.targets.tolist() == [label for _, label in (aug[i] for i in range(len(aug)))]
    aug.set_epoch(1)
    assert aug.targets.tolist() == [label for _, label in (aug[i] for i in range(len(aug)))]
    assert torch.equal(aug.targets[: len(small)], small.targets)


def test_split_is_not_a_named_split(digits):
    with pytest.raises(TypeError, match=r"split\(\) takes a number of images per class, got 'train'; .*load_digits\(split='train'\)"):
        digits.split("train")
    train, rest = digits.split(5, seed=0)
    assert len(train) == 50 and len(rest) == len(digits) - 50


# --- "is synthetic" ------------------------------------------------------------------------------


def test_the_deprecated_synthetic_key_reads_is_synthetic():
    item = SyntheticFlagDict(image=torch.zeros(1), is_synthetic=True)
    assert "synthetic" not in item and list(item) == ["image", "is_synthetic"]
    # a DataLoader worker sends the item back to the main process pickled: the flag and the alias survive that
    (restored,) = list(DataLoader([item], batch_size=None, num_workers=1))
    batch = default_collate([restored, item])
    assert type(batch) is SyntheticFlagDict and batch["is_synthetic"].tolist() == [True, True]
    with pytest.warns(FutureWarning, match="'synthetic' key is deprecated .* read 'is_synthetic'"):
        assert batch["synthetic"] is batch["is_synthetic"]
    with pytest.raises(KeyError):
        SyntheticFlagDict(image=1)["synthetic"]  # no flag, no alias
    assert SyntheticFlagDict(image=1).get("synthetic", "none") == "none"


# --- enable_progress_bar -------------------------------------------------------------------------


def test_fit_takes_lightnings_enable_progress_bar(digits, tmp_path):
    small = digits.subset(2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        synthaug.fit(small, "vae", out=tmp_path / "a", max_steps=1, batch_size=20, enable_progress_bar=False, logger=False, **TINY_VAE)
    with pytest.warns(FutureWarning, match=r"fit\(progress_bar=...\) is deprecated .* use enable_progress_bar="):
        synthaug.fit(small, "vae", out=tmp_path / "b", max_steps=1, batch_size=20, progress_bar=False, logger=False, **TINY_VAE)
    with pytest.raises(TypeError, match="pass enable_progress_bar= only"):
        synthaug.fit(small, "vae", out=tmp_path / "c", enable_progress_bar=False, progress_bar=False)
    with pytest.raises(TypeError, match="compress: pass enable_progress_bar= only"):
        synthaug.compress(tmp_path / "a", enable_progress_bar=False, progress_bar=False)


def test_bank_generate_takes_enable_progress_bar(digits_generator, tmp_path):
    with pytest.warns(FutureWarning, match=r"SyntheticBank.generate\(progress_bar=...\) is deprecated"):
        old = SyntheticBank.generate(digits_generator, path=tmp_path / "old", per_class=1, progress_bar=False)
    new = SyntheticBank.generate(digits_generator, path=tmp_path / "new", per_class=1, enable_progress_bar=False)
    assert torch.equal(old.images(range(10)), new.images(range(10)))


# --- train_classifier reads what the dataset knows -------------------------------------------------


def test_train_classifier_reads_shape_and_classes_from_the_dataset(digits, digits_bank):
    small = digits.subset(3, seed=0)
    given = train_classifier(small, image_shape=small.image_shape, num_classes=10, steps=2, batch_size=10, accelerator="cpu")
    read = train_classifier(small, steps=2, batch_size=10, accelerator="cpu")
    for a, b in zip(given.state_dict().values(), read.state_dict().values()):
        assert torch.equal(a, b)
    mixed = train_classifier(SyntheticAugment(small, digits_bank, ratio=1.0), steps=2, batch_size=10, accelerator="cpu")
    assert mixed(to_signed_unit(small.images[:2])).shape == (2, 10)
    pairs = [(small.images[i], int(small.labels[i])) for i in range(len(small))]
    with pytest.raises(TypeError, match=r"cannot read image_shape and num_classes from a list: pass image_shape=, num_classes="):
        train_classifier(pairs, steps=1)
    with pytest.raises(TypeError, match=r"cannot read num_classes from a list: pass num_classes="):
        train_classifier(pairs, image_shape=(1, 8, 8), steps=1)


def test_the_troubleshooting_page_quotes_these_messages(digits, digits_bank, tmp_path):
    from pathlib import Path

    pytest.importorskip("albumentations")
    from synthaug.integrations.albumentations import SyntheticReplaceImage

    page = (Path(__file__).parents[1] / "docs" / "troubleshooting.md").read_text()
    calls = [
        lambda: digits.split("train"),
        lambda: from_arrays(to_signed_unit(digits.images[:20]), digits.labels[:20]),
        lambda: train_classifier([(digits.images[0], 0)]),
        lambda: SyntheticReplaceImage(digits_bank.select([0])),
        lambda: synthaug.fit(digits, "vae", out=tmp_path, enable_progress_bar=False, progress_bar=False),
    ]
    for call in calls:
        with pytest.raises(Exception) as error:
            call()
        assert f"`{type(error.value).__name__}: {error.value}`" in page, str(error.value)
    with pytest.warns(FutureWarning) as warned:
        SyntheticFlagDict(is_synthetic=True)["synthetic"]
    assert f"`FutureWarning: {warned[0].message}`" in page
