"""SyntheticRows in real datasets.map pipelines, and its fingerprint."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

datasets = pytest.importorskip("datasets")
from datasets.fingerprint import Hasher  # noqa: E402

import synthaug  # noqa: E402
from synthaug.integrations.huggingface import SyntheticRows  # noqa: E402


@pytest.fixture(scope="module")
def digits_hf(digits):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list("0123456789"))})
    rows = {"image": [Image.fromarray(x[0].numpy(), mode="L") for x in digits.images[:100]], "label": digits.labels[:100].tolist()}
    return datasets.Dataset.from_dict(rows, features=features)


def test_map_appends_synthetic_rows(digits_hf, digits_bank):
    mapped = digits_hf.map(SyntheticRows(digits_bank, ratio=0.5), batched=True, batch_size=20, with_indices=True)
    assert len(mapped) == 150 and sum(mapped["is_synthetic"]) == 50
    assert mapped.features["label"] == digits_hf.features["label"]
    rows = mapped.filter(lambda row: row["is_synthetic"])
    for row in rows.select(range(5)):
        pool = digits_bank.images(digits_bank.indices_of(row["label"]))[:, 0].numpy()
        assert any(np.array_equal(np.array(row["image"]), x) for x in pool)
    again = digits_hf.map(SyntheticRows(digits_bank, ratio=0.5), batched=True, batch_size=20, with_indices=True)
    assert again["label"] == mapped["label"]


def test_array_images_stay_arrays(digits, digits_bank):
    ds = datasets.Dataset.from_dict({"pixels": digits.images[:10, 0].numpy().tolist(), "y": digits.labels[:10].tolist()})
    mapped = ds.map(SyntheticRows(digits_bank, ratio=1.0, image_column="pixels", label_column="y"), batched=True)
    assert len(mapped) == 20 and np.array(mapped[15]["pixels"]).shape == (8, 8)


def test_fingerprint_changes_with_source_ratio_and_seed_only(digits_bank, digits_generator, tmp_path):
    synthaug.save(digits_generator, tmp_path / "gen")
    base = Hasher.hash(SyntheticRows(digits_bank, ratio=0.5, seed=0))
    assert Hasher.hash(SyntheticRows(digits_bank.path, ratio=0.5, seed=0)) == base
    assert Hasher.hash(SyntheticRows(digits_bank, ratio=0.25, seed=0)) != base
    assert Hasher.hash(SyntheticRows(digits_bank, ratio=0.5, seed=1)) != base
    assert Hasher.hash(SyntheticRows(tmp_path / "gen", ratio=0.5, seed=0)) != base


def test_pickles_small(digits_bank):
    assert len(pickle.dumps(SyntheticRows(digits_bank))) < 1_000


def test_in_memory_generator_is_refused(digits_generator):
    with pytest.raises(TypeError, match=r"synthaug.save\(generator, path\)"):
        SyntheticRows(digits_generator)


def test_label_outside_the_source(digits_bank):
    batch = {"image": [np.zeros((8, 8), np.uint8)], "label": [12]}
    with pytest.raises(ValueError, match=r"labels \[12\]"):
        SyntheticRows(digits_bank)(batch)


def test_live_generator_directory(digits_hf, digits_generator, tmp_path):
    synthaug.save(digits_generator, tmp_path / "gen")
    mapped = digits_hf.select(range(10)).map(SyntheticRows(tmp_path / "gen", ratio=0.3), batched=True)
    assert len(mapped) == 13 and isinstance(mapped[12]["image"], Image.Image)
    assert torch.is_tensor(torch.as_tensor(np.array(mapped[12]["image"])))


def test_rows_without_indices_follow_the_batch_content(digits_hf, digits_bank):
    """Without with_indices=True each batch still gets its own rows, the same on every run (keyed on its content)."""
    rows = SyntheticRows(digits_bank, ratio=0.5)
    first = digits_hf.select(range(20))[:]
    second = {"image": [x.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for x in first["image"]], "label": first["label"]}
    a, b = rows(first), rows(second)  # the same labels, other images: a stream per batch position 0 gave both the same rows
    assert a[rows.image_column][20:] and a["is_synthetic"] == [False] * 20 + [True] * 10
    assert [np.array(x).tobytes() for x in a["image"][20:]] != [np.array(x).tobytes() for x in b["image"][20:]]
    again = SyntheticRows(digits_bank, ratio=0.5)(digits_hf.select(range(20))[:])
    assert [np.array(x).tobytes() for x in again["image"][20:]] == [np.array(x).tobytes() for x in a["image"][20:]]
    assert again["label"] == a["label"]
    mapped = digits_hf.map(SyntheticRows(digits_bank, ratio=0.5), batched=True, batch_size=20, num_proc=1)
    assert sum(mapped["is_synthetic"]) == 50
