"""SyntheticAugment on real digits: modes, drop-in item formats, determinism across workers, errors."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from synthaug.augment import ShareSchedule, SyntheticAugment
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
     ({"ratio": -0.1}, r"ratio must be a finite number >= 0"), ({"ratio": float("nan")}, "finite number"),
     ({"ratio": float("inf")}, "finite number"), ({"ratio": 0.5, "item": "tuple"}, "item must be"),
     ({"ratio": 0.5, "synthetic_weight": 0.5}, "needs item='dict'"), ({"synthetic_weight": -1.0, "item": "dict"}, ">= 0"),
     ({"sample_options": {"steps": 3}}, "apply to a live generator"),
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


class _FixedTeacher(torch.nn.Module):
    """Logits that depend on the image's brightness only: a teacher whose answers can be computed by hand."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.linspace(-2, 2, num_classes))

    def forward(self, x):
        return x.mean((1, 2, 3))[:, None] * self.scale[None]


def _expected_soft(images, temperature):
    from synthaug.inference import as_model_input

    with torch.no_grad():
        return (_FixedTeacher()(as_model_input(images[None] if images.ndim == 3 else images)) / temperature).softmax(1)


def test_teacher_soft_labels(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5, teacher=_FixedTeacher(), temperature=2.0)
    items = aug.__getitems__(list(range(295, 305)))
    for i, (image, target) in zip(range(295, 305), items):
        assert target.dtype == torch.float32 and target.shape == (10,)
        if aug.is_synthetic(i):
            assert torch.allclose(target, _expected_soft(image, 2.0)[0], atol=1e-6)
        else:
            assert torch.equal(target, torch.nn.functional.one_hot(torch.tensor(real[i][1]), 10).float())
    batch = next(iter(DataLoader(aug, batch_size=32, sampler=aug.sampler(seed=0))))
    assert batch[1].shape == (32, 10) and torch.allclose(batch[1].sum(1), torch.ones(32))


def test_teacher_hard_labels_replace_the_sampled_class(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5, teacher=_FixedTeacher(), hard_labels=True)
    for i in range(300, 310):
        image, label = aug[i]
        assert isinstance(label, int) and label == int(_expected_soft(image, 1.0).argmax())


def test_dict_items_carry_target_weight_and_flag(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5, item="dict", synthetic_weight=0.25)
    batch = next(iter(DataLoader(aug, batch_size=450, sampler=aug.sampler(seed=0, shuffle=False))))
    assert set(batch) == {"image", "label", "target", "weight", "is_synthetic"}
    assert torch.equal(batch["is_synthetic"], aug.synthetic_mask())
    assert torch.equal(batch["weight"], torch.where(batch["is_synthetic"], 0.25, 1.0))
    with pytest.warns(FutureWarning, match="'synthetic' key is deprecated"):
        assert torch.equal(batch["synthetic"], batch["is_synthetic"])  # the old key, until 0.3
    assert torch.equal(batch["target"].argmax(1), batch["label"]) and torch.equal(batch["target"].sum(1), torch.ones(450))
    assert torch.equal(batch["image"][:300], real.images)


def test_share_schedule_fades_synthetic_items_out(real, digits_bank):
    from synthaug.augment import ShareSchedule

    aug = SyntheticAugment(real, digits_bank, ratio=0.5, schedule=ShareSchedule(1.0, 0.0, epochs=2))
    assert [int(aug.synthetic_mask(e).sum()) for e in (0, 1, 2, 5)] == [150, 75, 0, 0]
    assert len(aug) == 450
    aug.set_epoch(2)
    for i in (300, 377, 449):  # freed slots hold real items of the slot's class
        image, label = aug[i]
        assert any(torch.equal(image, candidate) for candidate in real.images[real.labels == label])
    assert np.bincount([aug[i][1] for i in range(300, 450)], minlength=10).tolist() == [15] * 10
    assert ShareSchedule(1.0, 0.2, epochs=4, shape="cosine")(2) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"schedule": lambda epoch: 1.5}, r"must stay in \[0, 1\]"), ({"teacher": torch.ones(3, 10) / 10}, r"shape \(400, 10\)"),
     ({"teacher": torch.ones(400, 10)}, "sum to 1"), ({"teacher": _FixedTeacher(7)}, "outputs 7 class scores .* 10 classes"),
     ({"teacher": _FixedTeacher(), "temperature": 0}, "temperature must be > 0")],
)  # fmt: skip
def test_bad_teacher_or_schedule(real, digits_bank, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticAugment(real, digits_bank, ratio=0.5, **kwargs).synthetic_mask(1)


def test_bad_share_schedule():
    from synthaug.augment import ShareSchedule

    with pytest.raises(ValueError, match=r"start must lie in \[0, 1\]"):
        ShareSchedule(start=1.2)


def test_labeled_images_as_a_pool_source(real, digits):
    aug = SyntheticAugment(real, real, ratio=1.0)
    for i in (300, 450, 599):
        image, label = aug[i]
        assert any(torch.equal(image, candidate) for candidate in real.images[real.labels == label])


def test_live_samples_do_not_depend_on_the_batch(real, digits_generator):
    aug = SyntheticAugment(real, digits_generator, ratio=0.2)
    together = aug.__getitems__(list(range(290, 360)))
    alone = [aug[i] for i in range(290, 360)]
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(together, alone))


def _picks(aug, epoch):
    """The bank indices of ``epoch``'s synthetic items (the plan every item is looked up in)."""
    plan = aug._plan(epoch)
    return plan.picks[plan.classes >= 0], plan.classes[plan.classes >= 0]


def test_fresh_draw_uses_each_bank_sample_once_until_the_bank_runs_out(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.5, draw="fresh", seed=3)  # 15 per class per epoch, 40 in the bank
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning while samples are fresh
        (first, classes), (second, _) = _picks(aug, 0), _picks(aug, 1)
    used = np.concatenate([first, second])
    assert len(np.unique(used)) == 300, "no sample repeats across epochs"
    assert all(int(digits_bank.labels[i]) == c for i, c in zip(first, classes)), "each slot keeps its class"
    with pytest.warns(UserWarning, match=r"epoch 2 used up the 40 samples of class \d .*repeat from here on"):
        third, _ = _picks(aug, 2)
    assert set(np.concatenate([used, third]).tolist()) == set(range(400)), "the last 10 of each class come before any repeat"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once
        _picks(aug, 3)
    random_draw = SyntheticAugment(real, digits_bank, ratio=0.5, seed=3)
    assert len(np.unique(np.concatenate([_picks(random_draw, 0)[0], _picks(random_draw, 1)[0]]))) < 300


def test_fresh_draw_with_a_varying_share(real, digits_bank):
    """replace draws another number of slots per class each epoch, a schedule another share: still no repeats."""
    for aug in (SyntheticAugment(real, digits_bank, ratio=0.2, mode="replace", draw="fresh"),
                SyntheticAugment(real, digits_bank, ratio=0.5, draw="fresh", schedule=ShareSchedule(0.6, 0.2, epochs=3))):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            picks = np.concatenate([_picks(aug, epoch)[0] for epoch in (3, 0, 2, 1)])  # in any order
        assert len(picks) == 240 and len(np.unique(picks)) == len(picks)


@pytest.mark.filterwarnings("ignore:SyntheticAugment.draw='fresh'.*used up")  # epoch 3 runs past the bank: repeats too
def test_fresh_draw_is_the_same_for_any_number_of_workers(real, digits_bank):
    aug = SyntheticAugment(real, digits_bank, ratio=0.3, mode="replace", seed=7, draw="fresh")
    serial = _epoch_items(aug, 0, [3, 1])
    parallel = _epoch_items(aug, 2, [3, 1])
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert not torch.equal(serial[1], _epoch_items(SyntheticAugment(real, digits_bank, ratio=0.3, mode="replace", seed=7), 0, [1])[0])


def test_a_live_generator_is_fresh_every_epoch_either_way(real, digits_generator):
    fresh = SyntheticAugment(real, digits_generator, ratio=0.1, draw="fresh")
    plain = SyntheticAugment(real, digits_generator, ratio=0.1)
    assert torch.equal(fresh[305][0], plain[305][0]) and not torch.equal(fresh[305][0], fresh[(1, 305)][0])
    assert not set(_picks(fresh, 0)[0].tolist()) & set(_picks(fresh, 1)[0].tolist()), "every slot has a seed of its own"


def test_bad_draw(real, digits_bank):
    with pytest.raises(ValueError, match=r"draw must be 'random' or 'fresh' .*got 'unique'"):
        SyntheticAugment(real, digits_bank, draw="unique")
