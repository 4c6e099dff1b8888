"""The autoregressive family: causality, the incremental sampler against the network, and learning."""

import pytest
import torch

from synthaug.generators import create
from tests.conftest import TINY_AR


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 16, 16)])
def test_every_logit_depends_only_on_earlier_values(shape):
    """Changing a value changes the logits of later values only (raster order of patches, then within a patch)."""
    torch.manual_seed(0)
    model = create("ar", num_classes=3, image_shape=shape, **TINY_AR)
    x = torch.rand((1, *shape)) * 2 - 1
    labels = torch.tensor([1])
    patches = model._patches(x)
    _, s_count, hp, wp = patches.shape
    base = model.logits(x, labels)
    order = [(i, j, s) for i in range(hp) for j in range(wp) for s in range(s_count)]
    for position in (0, len(order) // 2, len(order) - 1):
        i, j, s = order[position]
        changed = patches.clone()
        changed[0, s, i, j] += 0.5
        diff = (model.logits(model._pixels(changed), labels) - base).abs().sum(-1)[0]  # (hp, wp, S)
        moved = {(a, b, c) for a, b, c in diff.nonzero().tolist()}
        assert all(order.index(m) > position for m in moved)
        if position + 1 < len(order):
            assert order[position + 1] in moved  # the next value does see it


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (3, 8, 8)])
def test_incremental_sampling_matches_the_network(shape, monkeypatch):
    """Teacher-force the sampler with an image: its cached computation must give the full network's logits."""
    torch.manual_seed(0)
    model = create("ar", num_classes=4, image_shape=shape, **TINY_AR).eval()
    image = ((torch.rand((1, *shape)) * 255).round() / 127.5 - 1)
    labels = torch.tensor([2])
    full = model.logits(image, labels)[0]  # (hp, wp, S, 256)
    target = model._patches(image)[0]  # (S, hp, wp)
    seen = []

    def forced(features, temperature, generator):
        i, j = divmod(len(seen), target.shape[2])
        truth = target[:, i, j][None]
        seen.append(torch.stack([model.head.step(features, truth * (torch.arange(len(truth[0])) < s), s)[0]
                                 for s in range(model.values)]))  # fmt: skip
        return truth

    monkeypatch.setattr(model, "_draw", forced)
    out = model.sample(labels)
    assert torch.equal(out, image)
    incremental = torch.stack(seen).view(*full.shape)
    assert torch.allclose(incremental, full, atol=1e-5)


def test_learns_and_samples_classes(digits, tmp_path):
    from sklearn.linear_model import LogisticRegression

    import synthaug

    model = synthaug.fit(digits, "ar", out=tmp_path, max_steps=300, batch_size=64, enable_progress_bar=False, logger=False,
                         channels=32, layers=4, head_hidden=32)  # fmt: skip
    clf = LogisticRegression(max_iter=2000).fit(digits.images.flatten(1).numpy() / 255, digits.labels.numpy())
    labels = torch.arange(10).repeat_interleave(20)
    samples = (model.sample(labels, generator=torch.Generator().manual_seed(0)) + 1) / 2
    assert (clf.predict(samples.flatten(1).numpy()) == labels.numpy()).mean() > 0.35  # chance: 0.1
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.sample([1], temperature=0)
    cooler = model.sample(labels[:50], generator=torch.Generator().manual_seed(0), temperature=0.5)
    assert cooler.shape == (50, 1, 8, 8)


def test_bad_patch_size():
    with pytest.raises(ValueError, match=r"patch_size 3 does not divide the 28x28 images; valid choices: \[1, 2, 4, 7"):
        create("ar", num_classes=3, image_shape=(1, 28, 28), patch_size=3)
