"""SyntheticAugment on real digits: modes, drop-in item formats, determinism across workers, errors."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from synthaug.augment import SyntheticAugment
from synthaug.data import from_arrays


def _bank_images_of(bank, label):
    return bank.images(bank.indices_of(label))


def _is_from_bank(bank, image, label):
    return any(torch.equal(image, candidate) for candidate in _bank_images_of(bank, label))


@pytest.fixture(scope="module")
def real(digits):
    return digits.subset(30, seed=0)  # 300 images


def test_append(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5, mode="append")
    assert len(aug) == 450 and aug.synthetic_mask().sum() == 150 and not aug.synthetic_mask()[:300].any()
    for i in (0, 299):
        assert torch.equal(aug[i][0], real[i][0]) and aug[i][1] == real[i][1]
    for i in (300, 449):
        image, label = aug[i]
        assert isinstance(label, int) and _is_from_bank(digits_bank, image, label)
    classes = [aug[i][1] for i in range(300, 450)]
    assert np.bincount(classes, minlength=10).tolist() == [15] * 10  # follows the real (balanced) proportions


def test_replace_draws_a_new_share_every_epoch(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.2, mode="replace")
    first, second = aug.synthetic_mask(epoch=0), aug.synthetic_mask(epoch=1)
    assert len(aug) == 300 and first.sum() == second.sum() == 60 and not torch.equal(first, second)
    i = int(torch.nonzero(first)[0])
    image, label = aug[(0, i)]
    assert label == real[i][1] and _is_from_bank(digits_bank, image, label)


def test_balance_tops_every_class_up(digits, digits_bank):
    keep = torch.cat([torch.nonzero(digits.labels == c).flatten()[: 5 + 3 * c] for c in range(10)])
    imbalanced = digits.select(keep)
    aug = SyntheticAugment(imbalanced, digits_bank, mode="balance")
    labels = [aug[i][1] for i in range(len(aug))]
    assert np.bincount(labels).tolist() == [32] * 10


class _Formatted(torch.utils.data.Dataset):
    def __init__(self, data, form):
        self.data, self.form = data, form

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        image, label = self.data[i]
        if self.form == "pil":
            return Image.fromarray(image[0].numpy(), mode="L"), label
        if self.form == "numpy_hw":
            return image[0].numpy(), np.int64(label)
        if self.form == "unit_float":
            return image.float() / 255, torch.tensor(label)
        return (image.float() / 255 - 0.5) / 0.25, label  # normalised


@pytest.mark.parametrize("form", ["pil", "numpy_hw", "unit_float", "normalised"])
def test_synthetic_items_match_the_real_format(real, digits_bank, form):
    dataset = _Formatted(real, form)
    normalize = ((0.5,), (0.25,)) if form == "normalised" else None
    aug = SyntheticAugment(dataset, digits_bank, ratio=0.5, normalize=normalize, labels=real.labels)
    (real_image, real_label), (fake_image, fake_label) = aug[0], aug[len(aug) - 1]
    assert type(fake_image) is type(real_image) and type(fake_label) is type(real_label)
    if form == "pil":
        assert fake_image.mode == real_image.mode and fake_image.size == real_image.size
    else:
        assert fake_image.dtype == real_image.dtype and fake_image.shape == real_image.shape
    if form == "normalised":
        unit = fake_image * 0.25 + 0.5
        assert unit.min() >= -1e-6 and unit.max() <= 1 + 1e-6 and fake_image.min() < 0


def test_normalised_items_without_normalize_are_refused(real, digits_bank):
    with pytest.raises(ValueError, match=r"pass normalize=\(mean, std\)"):
        SyntheticAugment(_Formatted(real, "normalised"), digits_bank, labels=real.labels)


def test_transform_applies_to_real_and_synthetic(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5, transform=lambda x: x.float().flip(-1))
    assert torch.equal(aug[0][0], real[0][0].float().flip(-1)) and aug[len(aug) - 1][0].dtype == torch.float32


def _epoch_items(aug, num_workers, epochs, **loader):
    sampler = aug.sampler(seed=5)
    dl = DataLoader(aug, batch_size=32, sampler=sampler, num_workers=num_workers, **loader)
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out.append(torch.cat([images for images, _ in dl]))
    return out


def test_same_items_for_any_number_of_workers(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.3, mode="replace", seed=7)
    serial = _epoch_items(aug, 0, [0, 1])
    parallel = _epoch_items(aug, 2, [0, 1], persistent_workers=True)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert not torch.equal(serial[0], serial[1])


def test_same_items_with_the_spawn_start_method(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5, seed=7)
    serial = _epoch_items(aug, 0, [2])
    spawned = _epoch_items(aug, 2, [2], multiprocessing_context="spawn")
    assert torch.equal(serial[0], spawned[0])


def test_live_generator_source_is_deterministic(real, digits_generator):
    aug = SyntheticAugment(real, digits_generator, ratio=0.1)
    image, label = aug[305]
    assert image.dtype == torch.uint8 and torch.equal(image, aug[305][0]) and label == aug[305][1]
    assert not torch.equal(image, aug[(1, 305)][0])


def test_sampler_shards_for_ddp(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5)
    shards = [list(aug.sampler(num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 225
    assert {i for _, i in shards[0] + shards[1]} == set(range(450))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"ratio": 1.5, "mode": "replace"}, r"ratio must lie in \[0, 1\] for mode='replace'"),
     ({"ratio": -0.1}, r"ratio must lie in \[0, inf\]"), ({"ratio": float("nan")}, "ratio must lie"),
     ({"ratio": 0.5, "mode": "balance"}, "leave ratio unset"), ({"mode": "mix"}, "mode must be")],
)  # fmt: skip
def test_bad_ratio_or_mode(real, digits_bank, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticAugment(real, digits_bank, **kwargs)


def test_bank_with_another_image_shape(digits_bank):
    fashion_like = from_arrays(np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10)
    with pytest.raises(ValueError, match=r"\(1, 28, 28\) but the synthetic source makes \(1, 8, 8\)"):
        SyntheticAugment(fashion_like, digits_bank)


def test_dataset_with_classes_the_source_lacks(digits, digits_bank):
    twelve = from_arrays(digits.images[:24], np.arange(24) % 12)
    with pytest.raises(ValueError, match=r"labels \[10, 11\] but the synthetic source only has classes 0..9"):
        SyntheticAugment(twelve, digits_bank)


def test_items_that_are_not_pairs(digits_bank):
    with pytest.raises(TypeError, match=r"must be an \(image, label\) pair, got tuple of length 3"):
        SyntheticAugment([(torch.zeros(1, 8, 8, dtype=torch.uint8), 0, "extra")], digits_bank)


def test_cuda_generator_in_forked_workers_is_refused(real, digits_generator, monkeypatch):
    aug = SyntheticAugment(real, digits_generator, ratio=0.5)
    monkeypatch.setattr(type(digits_generator), "device", property(lambda self: torch.device("cuda")))
    monkeypatch.setattr("synthaug.augment.get_worker_info", lambda: object())  # as inside a worker
    monkeypatch.setattr(torch.multiprocessing, "get_start_method", lambda allow_none=False: "fork")
    with pytest.raises(RuntimeError, match="CUDA does not survive fork.*SyntheticBank"):
        aug[len(aug) - 1]


def test_dataset_whose_class_names_differ(digits, digits_bank):
    renamed = from_arrays(digits.images[:20], digits.labels[:20], [f"digit {c}" for c in range(10)])
    with pytest.raises(ValueError, match="label i must mean the same class"):
        SyntheticAugment(renamed, digits_bank)
    assert len(SyntheticAugment(renamed, digits_bank, match_class_names=False)) == 30
