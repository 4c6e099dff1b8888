"""SyntheticReplace (per sample) and SyntheticMix (per batch) on real digits."""

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from synthaug.transforms import SyntheticMix, SyntheticReplace


def _from_bank(bank, image, label):
    return any(torch.equal(image, x) for x in bank.images(bank.indices_of(label)))


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_replace_with_probability_zero_and_one(digits, digits_bank, p):
    image, label = digits[10]
    out, out_label = SyntheticReplace(digits_bank, p=p, seed=0)(image, label)
    assert out_label == label
    assert torch.equal(out, image) if p == 0 else _from_bank(digits_bank, out, label)


def test_replace_keeps_pil_and_the_call_structure(digits, digits_bank):
    pil = Image.fromarray(digits.images[3, 0].numpy(), mode="L")
    replace = SyntheticReplace(digits_bank, p=1.0)
    as_tuple = replace((pil, 3))
    as_list = replace([pil, 3])
    assert isinstance(as_tuple, tuple) and isinstance(as_list, list) and isinstance(as_tuple[0], Image.Image)


def test_replace_is_seeded(digits, digits_bank):
    image, label = digits[0]
    replacers = [SyntheticReplace(digits_bank, p=0.5, seed=s) for s in (1, 1, 2)]
    runs = [[replace(image, label)[0] for _ in range(20)] for replace in replacers]
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_replace_workers_do_not_repeat_each_other(digits, digits_bank):
    replace = SyntheticReplace(digits_bank, p=1.0, seed=0)

    class Same(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return replace(*digits[0])

    loader = DataLoader(Same(), batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(0))
    first, second = (images for images, _ in loader)
    assert not torch.equal(first, second)


def test_replace_rejects_unknown_labels(digits, digits_bank):
    with pytest.raises(ValueError, match=r"labels \[11\]"):
        SyntheticReplace(digits_bank, p=1.0)(digits[0][0], 11)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        SyntheticReplace(digits_bank, p=2)


def test_mix_replace(digits, digits_bank):
    images, labels = digits.images[:16].float() / 255, digits.labels[:16]
    mix = SyntheticMix(digits_bank, ratio=0.25, mode="replace", seed=0)
    out_images, out_labels = mix(images, labels)
    mask = mix.last_synthetic_mask
    assert out_images.shape == images.shape and out_images.dtype == torch.float32 and mask.sum() == 4
    assert torch.equal(out_labels, labels) and torch.equal(out_images[~mask], images[~mask])
    for image, label in zip(out_images[mask], out_labels[mask]):
        assert _from_bank(digits_bank, (image * 255).round().to(torch.uint8), int(label))
    assert torch.equal(images, digits.images[:16].float() / 255), "the input batch must not be modified"


def test_mix_append_and_structures(digits, digits_bank):
    images, labels = digits.images[:10], digits.labels[:10]
    mix = SyntheticMix(digits_bank, ratio=0.5, mode="append")
    as_tuple, as_list, two = mix((images, labels)), mix([images, labels]), mix(images, labels)
    assert isinstance(as_tuple, tuple) and isinstance(as_list, list) and isinstance(two, tuple)
    assert as_list[0].shape == (15, 1, 8, 8) and as_list[0].dtype == torch.uint8
    assert set(as_list[1][10:].tolist()) <= set(labels.tolist())


def test_mix_normalised_batches(digits, digits_bank):
    images = (digits.images[:8].float() / 255 - 0.5) / 0.25
    with pytest.raises(ValueError, match=r"normalize=\(mean, std\)"):
        SyntheticMix(digits_bank, mode="replace")(images, digits.labels[:8])
    out, _ = SyntheticMix(digits_bank, ratio=1.0, mode="replace", normalize=([0.5], [0.25]))(images, digits.labels[:8])
    assert out.min() >= -2 - 1e-6 and out.max() <= 2 + 1e-6


@pytest.mark.parametrize(
    ("labels", "match"),
    [(torch.nn.functional.one_hot(torch.arange(4) % 10, 10).float(), "not one-hot"), (torch.arange(3), "4 images but 3 labels")],
)  # fmt: skip
def test_mix_validates_labels(digits, digits_bank, labels, match):
    with pytest.raises(ValueError, match=match):
        SyntheticMix(digits_bank, mode="append")(digits.images[:4], labels)


def test_mix_rejects_bad_ratio_and_shape(digits, digits_bank):
    with pytest.raises(ValueError, match=r"ratio must lie in \[0, 1\]"):
        SyntheticMix(digits_bank, ratio=1.2, mode="replace")
    with pytest.raises(ValueError, match=r"ratio must lie in \[0, inf\)"):
        SyntheticMix(digits_bank, ratio=float("inf"), mode="append")
    with pytest.raises(ValueError, match="synthetic source makes"):
        SyntheticMix(digits_bank, mode="append")(torch.zeros(4, 1, 28, 28), torch.arange(4))


class _Image(torch.Tensor):
    """Stands in for torchvision's tv_tensors.Image: a plain tensor subclass."""


def test_replace_keeps_tensor_subclasses_and_dict_samples(digits, digits_bank):
    image, label = digits[5]
    replace = SyntheticReplace(digits_bank, p=1.0)
    out, out_label = replace(image.as_subclass(_Image), label)
    assert type(out) is _Image and out_label == label and _from_bank(digits_bank, out.as_subclass(torch.Tensor), label)
    sample = {"image": image, "label": label, "path": "x.png"}
    result = replace(sample)
    assert result["path"] == "x.png" and result["label"] == label and _from_bank(digits_bank, result["image"], label)
    with pytest.raises(TypeError, match="needs 'image' and 'label'"):
        replace({"img": image})


def test_mix_default_mode_is_append_with_a_warning(digits, digits_bank):
    with pytest.warns(FutureWarning, match="default mode is now 'append'"):
        mix = SyntheticMix(digits_bank, ratio=0.5)
    assert mix.mode == "append" and len(mix(digits.images[:8], digits.labels[:8])[0]) == 12


def test_mix_dict_batches_get_targets_weights_and_flags(digits, digits_bank):
    batch = {"image": digits.images[:8].as_subclass(_Image), "label": digits.labels[:8], "id": torch.arange(8)}
    out = SyntheticMix(digits_bank, ratio=0.5, mode="append", synthetic_weight=0.3)(batch)
    assert type(out["image"]) is _Image and out["image"].shape == (12, 1, 8, 8) and torch.equal(out["id"], torch.arange(8))
    assert out["is_synthetic"].tolist() == [False] * 8 + [True] * 4 and "synthetic" not in out
    with pytest.warns(FutureWarning, match="read 'is_synthetic'"):
        assert out.get("synthetic") is out["is_synthetic"]
    assert torch.allclose(out["weight"], torch.tensor([1.0] * 8 + [0.3] * 4))
    assert torch.equal(out["target"].argmax(1), out["label"]) and torch.equal(out["label"][:8], digits.labels[:8])
    with pytest.raises(ValueError, match="needs a dict batch"):
        SyntheticMix(digits_bank, ratio=0.5, mode="append", synthetic_weight=0.3)(digits.images[:8], digits.labels[:8])


def test_mix_with_a_soft_teacher(digits, digits_bank):
    from tests.test_augment import _expected_soft, _FixedTeacher

    mix = SyntheticMix(digits_bank, ratio=0.5, mode="append", teacher=_FixedTeacher(), temperature=3.0)
    images, targets = mix(digits.images[:8], digits.labels[:8])
    assert targets.shape == (12, 10) and torch.equal(targets[:8], torch.nn.functional.one_hot(digits.labels[:8], 10).float())
    assert torch.allclose(targets[8:], _expected_soft(images[8:], 3.0), atol=1e-6)


def test_mix_mixup_blends_real_and_synthetic(digits, digits_bank):
    images, labels = digits.images[:16].float() / 255, digits.labels[:16]
    mix = SyntheticMix(digits_bank, ratio=0.5, mode="mixup", alpha=0.4)
    params = mix.draw_params(labels, torch.Generator().manual_seed(3))
    out, targets, mask = mix.apply(images, labels, params)
    where, lam = params["where"], params["lam"]
    assert len(where) == 8 and not mask.any() and ((lam > 0) & (lam < 1)).all()
    expected = lam[:, None, None, None] * images[where] + (1 - lam[:, None, None, None]) * params["images"].float() / 255
    assert torch.allclose(out[where], expected, atol=1e-6)
    untouched = torch.ones(16, dtype=torch.bool)
    untouched[where] = False
    assert torch.equal(out[untouched], images[untouched]) and torch.allclose(targets.sum(1), torch.ones(16))
    assert torch.allclose(targets[where].gather(1, labels[where, None]).squeeze(1), lam + (1 - lam) * (params["classes"] == labels[where]))


def test_mix_mixup_blends_uint8_batches_too(digits, digits_bank):
    images, labels = digits.images[:16], digits.labels[:16]
    mix = SyntheticMix(digits_bank, ratio=1.0, mode="mixup", alpha=0.4)
    params = mix.draw_params(labels, torch.Generator().manual_seed(1))
    out, targets, _ = mix.apply(images, labels, params)
    lam = params["lam"][:, None, None, None]
    assert out.dtype == torch.uint8
    blended = out[params["where"]].float()
    assert torch.allclose(blended, (lam * images[params["where"]].float() + (1 - lam) * params["images"].float()), atol=0.5)
    assert not torch.equal(out[params["where"]], params["images"])  # not simply replaced


def test_mix_cutmix_pastes_synthetic_boxes(digits, digits_bank):
    images, labels = digits.images[:16], digits.labels[:16]
    mix = SyntheticMix(digits_bank, ratio=0.5, mode="cutmix", alpha=1.0)
    params = mix.draw_params(labels, torch.Generator().manual_seed(4))
    out, targets, mask = mix.apply(images, labels, params)
    assert out.dtype == torch.uint8 and not mask.any() and torch.allclose(targets.sum(1), torch.ones(16))
    for row, (top, left, bottom, right) in zip(params["where"].tolist(), params["boxes"].tolist()):
        i = params["where"].tolist().index(row)
        assert torch.equal(out[row, :, top:bottom, left:right], params["images"][i, :, top:bottom, left:right])
        outside = torch.ones_like(out[row], dtype=torch.bool)
        outside[:, top:bottom, left:right] = False
        assert torch.equal(out[row][outside], images[row][outside])


def test_mix_applies_its_transform_to_the_samples_only(digits, digits_bank):
    images, labels = digits.images[:8], digits.labels[:8]
    seen = []

    def invert(batch, generator=None):
        seen.append(batch.clone())
        return 255 - batch

    mix = SyntheticMix(digits_bank, ratio=0.5, mode="replace", transform=invert)
    params = mix.draw_params(labels, torch.Generator().manual_seed(0))
    out, _, mask = mix.apply(images, labels, params)
    assert len(seen) == 1 and torch.equal(seen[0], params["images"])
    assert torch.equal(out[params["where"]], 255 - params["images"]) and torch.equal(out[~mask], images[~mask])


def test_mix_rejects_a_ratio_that_is_not_a_number(digits_bank):
    with pytest.raises(TypeError, match="ratio must be a number, got str '0.5'"):
        SyntheticMix(digits_bank, ratio="0.5", mode="append")
