"""Training through Lightning: outputs, exact resume, DDP, and that the model really learns."""

import glob
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

import synthaug
from synthaug.data.samplers import EpochShuffleSampler
from synthaug.generators import get_family
from tests.conftest import QUIET, TINY_DDPM, TINY_VAE


@pytest.fixture(scope="module")
def small(digits):
    return digits.subset(20, seed=0)  # 200 images: 6 batches of 32 per epoch


def test_fit_writes_generator_grids_checkpoints_and_logs(small, tmp_path):
    state = torch.get_rng_state()
    gen = synthaug.fit(small, "vae", out=tmp_path, max_steps=12, batch_size=32, enable_progress_bar=False, **TINY_VAE)
    assert torch.equal(state, torch.get_rng_state()), "training must not touch the global RNG"
    assert not gen.training and gen.class_names == small.class_names
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["epoch=0000.png", "epoch=0001.png"]
    grid = np.array(Image.open(tmp_path / "samples" / "epoch=0001.png"))
    assert grid.shape[0] > grid.shape[1]  # 10 class rows x 8 samples
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert glob.glob(str(tmp_path / "logs" / "version_0" / "metrics.csv"))
    loaded = synthaug.load(tmp_path / "generator")
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), loaded.state_dict().values()))


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture(scope="module")
def whole(small, tmp_path_factory):
    """16 steps in one go (6 batches of 32 per epoch), keeping every end-of-epoch checkpoint."""
    out = tmp_path_factory.mktemp("whole")
    return synthaug.fit(small, "vae", out=out, max_steps=16, batch_size=32, checkpoint_every_n_epochs=1, keep_checkpoints=-1,
                        **QUIET, **TINY_VAE), out  # fmt: skip


@pytest.mark.parametrize("step", [6, 12])
def test_resume_from_an_end_of_epoch_checkpoint_gives_identical_weights(small, whole, tmp_path, step):
    model, out = whole
    (checkpoint,) = glob.glob(str(out / "checkpoints" / f"*-step={step}.ckpt"))
    resumed = synthaug.fit(small, "vae", out=tmp_path, max_steps=16, batch_size=32, ckpt_path=checkpoint, **QUIET, **TINY_VAE)
    assert _same(model, resumed)


def test_resume_mid_epoch_gives_identical_weights(small, whole, tmp_path):
    opts = {"max_steps": 16, "batch_size": 32, **QUIET, **TINY_VAE}
    synthaug.fit(small, "vae", out=tmp_path / "a", checkpoint_every_n_steps=8, keep_checkpoints=-1, **opts)
    (halfway,) = glob.glob(str(tmp_path / "a" / "checkpoints" / "*step=8.ckpt"))  # the middle of the second epoch
    assert _same(whole[0], synthaug.fit(small, "vae", out=tmp_path / "b", ckpt_path=halfway, **opts))


def _last_step(out):
    return torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def test_resume_a_stopped_run_from_last(small, whole, tmp_path):
    opts = {"batch_size": 32, **QUIET, **TINY_VAE}
    synthaug.fit(small, "vae", out=tmp_path, max_steps=10, **opts)  # periodic checkpoints every 6 steps
    assert _last_step(tmp_path) == 10, "last.ckpt is where the run stopped, not the periodic checkpoint before it"
    assert _same(whole[0], synthaug.fit(small, "vae", out=tmp_path, max_steps=16, ckpt_path="last", **opts))


def test_resume_a_run_that_a_budget_stopped_from_last(small, whole, tmp_path):
    import lightning as L

    class Budget(L.Callback):  # how Lightning's Timer (max_time) and early stopping end a run
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 9:
                trainer.should_stop = True

    opts = {"max_steps": 16, "batch_size": 32, **QUIET, **TINY_VAE}
    synthaug.fit(small, "vae", out=tmp_path, trainer_kwargs={"callbacks": [Budget()]}, **opts)
    assert _last_step(tmp_path) == 9
    assert _same(whole[0], synthaug.fit(small, "vae", out=tmp_path, ckpt_path="last", **opts))


def test_resume_after_ctrl_c_from_last(small, whole, tmp_path):
    import signal

    import lightning as L

    class CtrlC(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 9:
                raise KeyboardInterrupt

    opts = {"max_steps": 16, "batch_size": 32, **QUIET, **TINY_VAE}
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises((KeyboardInterrupt, SystemExit)):
            synthaug.fit(small, "vae", out=tmp_path, trainer_kwargs={"callbacks": [CtrlC()]}, **opts)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl-C after the first one
    assert _last_step(tmp_path) == 9
    assert _same(whole[0], synthaug.fit(small, "vae", out=tmp_path, ckpt_path="last", **opts))


def test_resume_prunes_the_checkpoints_the_interrupted_run_left(small, tmp_path):
    opts = {"batch_size": 32, **QUIET, **TINY_VAE}
    synthaug.fit(small, "vae", out=tmp_path, max_steps=18, checkpoint_every_n_epochs=1, keep_checkpoints=-1, **opts)
    (early,) = glob.glob(str(tmp_path / "checkpoints" / "*-step=6.ckpt"))
    synthaug.fit(small, "vae", out=tmp_path, max_steps=20, ckpt_path=early, checkpoint_every_n_epochs=1, keep_checkpoints=1, **opts)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["epoch=3-step=20.ckpt", "last.ckpt"]


def test_checkpoints_about_twenty_times_a_run_by_default(small, tmp_path):
    synthaug.fit(small, "vae", out=tmp_path, max_steps=60, batch_size=32, keep_checkpoints=-1, **QUIET, **TINY_VAE)
    steps = sorted(int(p.stem.split("step=")[1]) for p in (tmp_path / "checkpoints").glob("epoch=*.ckpt"))
    assert steps == list(range(6, 61, 6))  # every 6 steps: an epoch, as 60 / 20 = 3 would be more often than that


def test_nothing_to_resume_is_an_error(small, tmp_path):
    with pytest.raises(FileNotFoundError, match="has no last.ckpt"):
        synthaug.fit(small, "vae", out=tmp_path, max_steps=2, ckpt_path="last", **QUIET, **TINY_VAE)


def test_a_checkpoint_with_pickled_objects_is_refused_and_nothing_runs(small, tmp_path):
    from synthaug.training import UnsafeCheckpointError

    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"state_dict": {}, "payload": Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(UnsafeCheckpointError, match="will not unpickle"):
        synthaug.fit(small, "vae", out=tmp_path / "run", max_steps=2, ckpt_path=tmp_path / "evil.ckpt", **QUIET, **TINY_VAE)
    assert not marker.exists()


def test_resume_with_another_batch_size_is_refused(small, tmp_path):
    synthaug.fit(small, "vae", out=tmp_path, max_steps=2, batch_size=32, **QUIET, **TINY_VAE)
    with pytest.raises(ValueError, match="resume with the same values"):
        synthaug.fit(small, "vae", out=tmp_path, max_steps=4, batch_size=16, ckpt_path="last", **QUIET, **TINY_VAE)


def test_ddp_spawn_on_two_cpu_processes(small, tmp_path):
    gen = synthaug.fit(
        small, "vae", out=tmp_path, max_steps=3, batch_size=16, accelerator="cpu", devices=2, strategy="ddp_spawn",
        **QUIET, **TINY_VAE,
    )  # fmt: skip
    loaded = synthaug.load(tmp_path / "generator")
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), loaded.state_dict().values()))
    assert loaded.sample([0, 9]).shape == (2, 1, 8, 8)


def test_sampler_shards_evenly_and_resumes():
    ranks = [list(EpochShuffleSampler(10, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4] and set(sum(ranks, [])) == set(range(10))
    sampler = EpochShuffleSampler(10, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.resume_from(2, skip=4)
    assert list(sampler) == full[4:] and list(sampler) == full  # the skip applies to one pass only


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [({"max_steps": 0}, ValueError, "must be a whole number >= 1"), ({"max_epochs": 0}, ValueError, "must be a whole number >= 1"),
     ({"family": "gann"}, ValueError, "known families"), ({"latent": 3}, TypeError, "valid options")],
)  # fmt: skip
def test_fit_rejects_bad_arguments(small, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        synthaug.fit(small, out=tmp_path, **{**QUIET, **kwargs})


def test_the_old_generator_keyword_still_names_the_family(small, tmp_path):
    with pytest.warns(FutureWarning, match="family"):
        model = synthaug.fit(small, generator="gan", out=tmp_path, max_steps=2, **QUIET, latent_dim=8, generator_channels=8,
                             discriminator_channels=8, max_channels=16)  # fmt: skip
    assert model.family == "gan"


def test_fit_is_quiet_and_a_piped_progress_display_writes_lines(small, tmp_path, capfd):
    synthaug.fit(small, "vae", out=tmp_path, max_steps=20, batch_size=32, logger=False, **TINY_VAE)
    out, err = capfd.readouterr()
    assert out == "" and "GPU available" not in err and "litlogger" not in err and "LeafSpec" not in err
    lines = [line for line in err.splitlines() if line.startswith("fit vae: step")]
    assert 5 <= len(lines) <= 11 and "\r" not in err and lines[-1].startswith("fit vae: step 20/20 (100%)")


def test_fit_defaults_to_the_familys_steps(small, tmp_path, monkeypatch):
    monkeypatch.setattr(get_family("vae"), "default_steps", 3)
    synthaug.fit(small, out=tmp_path, **{**QUIET, "max_steps": None})
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3


def test_fit_rejects_raw_tensors(small, tmp_path):
    with pytest.raises(TypeError, match="from_arrays"):
        synthaug.fit((small.images, small.labels), out=tmp_path)


def _recognised(gen, clf):
    labels = torch.arange(10).repeat_interleave(50)
    fake = (gen.sample(labels, generator=torch.Generator().manual_seed(0)) + 1) / 2
    return (clf.predict(fake.flatten(1).numpy()) == labels.numpy()).mean()


def test_vae_learns_class_conditional_digits(digits, tmp_path):
    """A classifier trained on real digits must recognise the samples' intended classes."""
    clf = LogisticRegression(max_iter=2000).fit(digits.images.flatten(1).numpy() / 255, digits.labels.numpy())
    opts = {"base_channels": 16, "max_channels": 32}
    untrained = synthaug.fit(digits, out=tmp_path / "a", max_steps=1, **QUIET, **opts)
    trained = synthaug.fit(digits, out=tmp_path / "b", max_steps=400, **QUIET, **opts)
    assert _recognised(untrained, clf) < 0.3
    assert _recognised(trained, clf) > 0.9


def test_bf16_mixed_precision_passes_through_to_lightning_and_resumes(small, tmp_path):
    opts = {"batch_size": 32, "precision": "bf16-mixed", "accelerator": "cpu", **QUIET, **TINY_VAE}
    synthaug.fit(small, "vae", out=tmp_path, max_steps=3, **opts)
    model = synthaug.fit(small, "vae", out=tmp_path, max_steps=5, ckpt_path="last", **opts)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5
    assert torch.isfinite(model.sample([0, 1])).all()


def test_fit_advises_augmentation_to_a_ddpm_on_very_few_images(digits, tmp_path, caplog):
    few = digits.subset(5, seed=0)
    opts = {"max_steps": 1, "batch_size": 25, **QUIET}
    with caplog.at_level(logging.WARNING, logger="synthaug.training"):
        synthaug.fit(few, "ddpm", out=tmp_path / "a", **opts, **TINY_DDPM)
    assert "a class has only 5 training images" in caplog.text and "augment_p=0.3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="synthaug.training"):
        synthaug.fit(few, "ddpm", out=tmp_path / "b", augment_p=0.3, **opts, **TINY_DDPM)  # augmented already
        synthaug.fit(few, "vae", out=tmp_path / "c", **opts, **TINY_VAE)  # measured on the ddpm only
        synthaug.fit(digits.subset(30, seed=0), "ddpm", out=tmp_path / "d", **opts, **TINY_DDPM)  # enough images
        synthaug.fit(few, "ddpm", out=tmp_path / "a", ckpt_path="last", **{**opts, "max_steps": 2}, **TINY_DDPM)  # resumed
    assert "training images" not in caplog.text
