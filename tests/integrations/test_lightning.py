"""SyntheticMixCallback and SyntheticMixMixin inside real Lightning training runs on digits."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from synthaug.data import from_arrays
from synthaug.integrations.lightning import SyntheticMixCallback, SyntheticMixMixin


class Classifier(L.LightningModule):
    """Records how many all-black (real, in these tests) images each training batch holds."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        self.black_per_batch = []

    def training_step(self, batch, batch_idx):
        images, labels = (batch["image"], batch["label"]) if isinstance(batch, dict) else (batch[0], batch[1])
        self.black_per_batch.append(int((images.flatten(1).amax(1) == 0).sum()))
        return nn.functional.cross_entropy(self.net(images.float() / 255), labels)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class MixedClassifier(SyntheticMixMixin, Classifier):
    def __init__(self, source, **mix):
        super().__init__()
        self.configure_synthetic_mix(source, **mix)


@pytest.fixture(scope="module")
def black_digits():
    """Real images that are all black, so every non-black image in a batch is synthetic."""
    return from_arrays(torch.zeros(64, 1, 8, 8, dtype=torch.uint8), torch.arange(64) % 10)


def _loader(data, collate):
    return DataLoader(data, batch_size=16, collate_fn=collate, generator=torch.Generator().manual_seed(0))


def _as_list(items):
    return [torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])]


def _as_dict(items):
    images, labels = _as_list(items)
    return {"image": images, "label": labels, "index": list(range(len(items)))}


def _as_tuple(items):
    return tuple(_as_list(items))


def _trainer(tmp_path, callbacks=(), **kwargs):
    return L.Trainer(
        default_root_dir=tmp_path, callbacks=list(callbacks), logger=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", **{"max_epochs": 1, **kwargs},
    )  # fmt: skip


@pytest.mark.parametrize("collate", [_as_list, _as_dict])
def test_callback_mixes_list_and_dict_batches(black_digits, digits_bank, tmp_path, collate):
    model, callback = Classifier(), SyntheticMixCallback(digits_bank, ratio=0.25, mode="replace")
    _trainer(tmp_path, [callback]).fit(model, _loader(black_digits, collate))
    assert model.black_per_batch == [12, 12, 12, 12]  # 4 of 16 replaced in every batch
    assert callback.batches_mixed == 4 and callback.synthetic_items == 16


def test_callback_refuses_tuple_batches(black_digits, digits_bank, tmp_path):
    with pytest.raises(TypeError, match="SyntheticMixMixin"):
        _trainer(tmp_path, [SyntheticMixCallback(digits_bank, mode="replace")]).fit(Classifier(), _loader(black_digits, _as_tuple))


def test_callback_keeps_the_generator_out_of_the_model(black_digits, digits_generator, tmp_path):
    model, callback = Classifier(), SyntheticMixCallback(digits_generator, ratio=0.5, mode="append")
    trainer = _trainer(tmp_path, [callback])
    trainer.fit(model, _loader(black_digits, _as_list))
    assert set(model.state_dict()) == {"net.1.weight", "net.1.bias"}
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.parameters()}
    assert not any(p.requires_grad for p in digits_generator.parameters())
    assert model.black_per_batch == [16, 16, 16, 16] and callback.synthetic_items == 32  # 8 appended per batch


def test_callback_state_round_trips_through_a_checkpoint(black_digits, digits_bank, tmp_path):
    first = SyntheticMixCallback(digits_bank, ratio=0.25, mode="replace", seed=3)
    trainer = _trainer(tmp_path, [first])
    trainer.fit(Classifier(), _loader(black_digits, _as_list))
    trainer.save_checkpoint(tmp_path / "mixed.ckpt")
    checkpoint = torch.load(tmp_path / "mixed.ckpt", weights_only=True)
    assert checkpoint["callbacks"][first.state_key]["batches_mixed"] == 4
    second = SyntheticMixCallback(digits_bank, ratio=0.25, mode="replace", seed=3)
    _trainer(tmp_path, [second], max_epochs=2).fit(
        Classifier(), _loader(black_digits, _as_list), ckpt_path=tmp_path / "mixed.ckpt", weights_only=True
    )
    assert second.batches_mixed == 8 and second.synthetic_items == 32


@pytest.mark.parametrize("collate", [_as_tuple, _as_list, _as_dict])
def test_mixin_mixes_in_on_after_batch_transfer(black_digits, digits_bank, tmp_path, collate):
    model = MixedClassifier(digits_bank, ratio=0.5, mode="replace")
    _trainer(tmp_path).fit(model, _loader(black_digits, collate))
    assert model.black_per_batch == [8, 8, 8, 8]
    assert set(model.state_dict()) == {"net.1.weight", "net.1.bias"}


def test_callback_adds_weights_and_soft_targets_to_dict_batches(black_digits, digits_bank, tmp_path):
    from tests.test_augment import _FixedTeacher

    seen = []

    class Recorder(Classifier):
        def training_step(self, batch, batch_idx):
            seen.append({k: v.clone() for k, v in batch.items() if torch.is_tensor(v)})
            return super().training_step(batch, batch_idx)

    callback = SyntheticMixCallback(digits_bank, ratio=0.25, mode="append", synthetic_weight=0.5, teacher=_FixedTeacher(),
                                    image_key="image", label_key="label")  # fmt: skip
    _trainer(tmp_path, [callback]).fit(Recorder(), _loader(black_digits, _as_dict))
    batch = seen[0]
    assert batch["image"].shape[0] == 20 and batch["is_synthetic"].sum() == 4
    assert torch.equal(batch["weight"], torch.where(batch["is_synthetic"], 0.5, 1.0))
    assert torch.allclose(batch["target"].sum(1), torch.ones(20)) and (batch["target"][batch["is_synthetic"]] < 1).all()
    assert torch.equal(batch["synthetic"], batch["is_synthetic"])  # the user's dict keeps the deprecated key until 0.3


def test_mixin_dict_batches_carry_is_synthetic_and_the_old_key_warns(black_digits, digits_bank, tmp_path):
    seen = []

    class Recorder(MixedClassifier):
        def training_step(self, batch, batch_idx):
            with pytest.warns(FutureWarning, match="'synthetic' key is deprecated"):
                seen.append((batch["is_synthetic"].clone(), batch["synthetic"].clone(), "synthetic" in batch))
            return super().training_step(batch, batch_idx)

    _trainer(tmp_path, max_steps=1).fit(Recorder(digits_bank, ratio=0.25, mode="append"), _loader(black_digits, _as_dict))
    flags, old, stored = seen[0]
    assert flags.tolist() == [False] * 16 + [True] * 4 and torch.equal(old, flags) and not stored
