"""SyntheticReplaceImage in real albumentations pipelines, and its serialisation round trip."""

import numpy as np
import pytest

A = pytest.importorskip("albumentations")
from synthaug.integrations.albumentations import SyntheticReplaceImage  # noqa: E402


def _hwc(digits, i):
    return digits.images[i].permute(1, 2, 0).numpy()


def test_replaces_with_a_sample_of_the_label(digits, digits_bank):
    pipeline = A.Compose([SyntheticReplaceImage(str(digits_bank.path), p=1.0)], seed=0)
    out = pipeline(image=_hwc(digits, 0), label=4)
    assert out["label"] == 4 and out["image"].shape == (8, 8, 1) and out["image"].dtype == np.uint8
    pool = digits_bank.images(digits_bank.indices_of(4)).permute(0, 2, 3, 1).numpy()
    assert any(np.array_equal(out["image"], x) for x in pool)


def test_float_images_stay_float(digits, digits_bank):
    image = _hwc(digits, 0).astype(np.float32) / 255
    out = A.Compose([SyntheticReplaceImage(str(digits_bank.path), p=1.0)], seed=0)(image=image, label=2)["image"]
    assert out.dtype == np.float32 and out.max() <= 1.0


def test_serialisation_round_trip_gives_the_same_output(digits, digits_bank):
    pipeline = A.Compose([SyntheticReplaceImage(str(digits_bank.path), p=0.5), A.HorizontalFlip(p=0.5)], seed=7)
    restored = A.from_dict(A.to_dict(pipeline))
    restored.set_random_seed(7)
    pipeline.set_random_seed(7)
    for i in range(10):
        a = pipeline(image=_hwc(digits, i), label=int(digits.labels[i]))["image"]
        b = restored(image=_hwc(digits, i), label=int(digits.labels[i]))["image"]
        assert np.array_equal(a, b)
    stored = A.to_dict(pipeline)["transform"]["transforms"][0]
    assert stored["source_sha256"] == digits_bank.sha256 and "module" not in str(stored)


def test_changed_source_is_refused(digits_bank):
    with pytest.raises(ValueError, match="changed"):
        SyntheticReplaceImage(str(digits_bank.path), source_sha256="0" * 64)


def test_missing_label_target(digits, digits_bank):
    with pytest.raises(ValueError, match="label"):
        A.Compose([SyntheticReplaceImage(str(digits_bank.path), p=1.0)])(image=_hwc(digits, 0))


def test_takes_an_open_bank_and_serialises_its_path(digits, digits_bank):
    pipeline = A.Compose([SyntheticReplaceImage(digits_bank, p=1.0)], seed=3)
    by_path = A.Compose([SyntheticReplaceImage(str(digits_bank.path), p=1.0)], seed=3)
    assert np.array_equal(pipeline(image=_hwc(digits, 0), label=5)["image"], by_path(image=_hwc(digits, 0), label=5)["image"])
    stored = A.to_dict(pipeline)["transform"]["transforms"][0]
    assert stored["source"] == str(digits_bank.path) and stored["source_sha256"] == digits_bank.sha256
    restored = A.from_dict(A.to_dict(pipeline))
    restored.set_random_seed(3)
    pipeline.set_random_seed(3)
    assert np.array_equal(restored(image=_hwc(digits, 1), label=2)["image"], pipeline(image=_hwc(digits, 1), label=2)["image"])


def test_a_source_without_a_path_is_refused(digits_bank, digits_generator):
    with pytest.raises(ValueError, match="select\\(\\) view of a bank has no path"):
        SyntheticReplaceImage(digits_bank.select([0, 1, 2]))
    with pytest.raises(TypeError, match="got a .*; save a generator first: synthaug.save"):
        SyntheticReplaceImage(digits_generator)
