"""Saving and loading: round trip, and refusal of anything truncated, edited or foreign."""

import json

import pytest
import torch

import synthaug
from synthaug.generators import GENERATORS, create
from synthaug.io import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME, CorruptSaveError
from tests.conftest import TINY


@pytest.fixture
def saved(tmp_path):
    gen = create("vae", num_classes=3, image_shape=(1, 8, 8), class_names=["cat", "dog", "owl"], **TINY["vae"])
    synthaug.save(gen, tmp_path / "gen")
    return gen, tmp_path / "gen"


@pytest.mark.parametrize("family", sorted(GENERATORS))
def test_round_trip(family, tmp_path):
    gen = create(family, num_classes=4, image_shape=(3, 16, 16), class_names=list("wxyz"), **TINY[family])
    synthaug.save(gen, tmp_path)
    loaded = synthaug.load(tmp_path)
    assert type(loaded) is type(gen) and loaded.config == gen.config and loaded.class_names == tuple("wxyz")
    assert not loaded.training
    labels = [0, 1, 2, 3]
    assert torch.equal(
        gen.eval().sample(labels, generator=torch.Generator().manual_seed(1)),
        loaded.sample(labels, generator=torch.Generator().manual_seed(1)),
    )


def test_config_records_what_the_issue_asks(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_NAME).read_text())
    assert meta["family"] == "vae" and meta["format_version"] == FORMAT_VERSION
    assert meta["library_version"] == synthaug.__version__ and meta["class_names"] == ["cat", "dog", "owl"]
    assert meta["config"]["image_shape"] == [1, 8, 8] and meta["config"]["latent_dim"] == TINY["vae"]["latent_dim"]
    assert len(meta["weights"]["sha256"]) == 64


def test_tampered_weights_are_refused(saved):
    _, path = saved
    blob = bytearray((path / WEIGHTS_NAME).read_bytes())
    blob[-5] ^= 0xFF  # one flipped byte inside a weight
    (path / WEIGHTS_NAME).write_bytes(bytes(blob))
    with pytest.raises(CorruptSaveError, match="does not match its recorded sha256"):
        synthaug.load(path)


def test_truncated_weights_are_refused(saved):
    _, path = saved
    blob = (path / WEIGHTS_NAME).read_bytes()
    (path / WEIGHTS_NAME).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CorruptSaveError, match="truncated"):
        synthaug.load(path)


def test_newer_format_version_is_refused(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (path / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(CorruptSaveError, match="upgrade synthaug"):
        synthaug.load(path)


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda p: (p / CONFIG_NAME).write_text("{not json"), CorruptSaveError, "not valid JSON"),
        (lambda p: (p / CONFIG_NAME).unlink(), FileNotFoundError, "config.json is missing"),
        (lambda p: (p / WEIGHTS_NAME).unlink(), CorruptSaveError, "missing; the save is incomplete"),
        (lambda p: (p / CONFIG_NAME).write_text('{"library": "other"}'), CorruptSaveError, "not written by synthaug"),
    ],
)
def test_broken_directories_are_refused(saved, edit, error, match):
    _, path = saved
    edit(path)
    with pytest.raises(error, match=match):
        synthaug.load(path)


def test_config_that_does_not_fit_the_weights(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta["config"]["latent_dim"] += 1  # edited config, untouched weights
    (path / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(CorruptSaveError, match="do not fit the saved config"):
        synthaug.load(path)


def test_unknown_family_in_a_save(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta["family"] = "mystery"
    (path / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown generator family 'mystery'"):
        synthaug.load(path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        synthaug.load(tmp_path / "nope")


def test_the_save_method_still_works_with_a_deprecation_warning(tmp_path):
    gen = create("vae", num_classes=3, image_shape=(1, 8, 8), **TINY["vae"])
    with pytest.warns(FutureWarning, match=r"synthaug.save\(generator, path\)"):
        gen.save(tmp_path)
    assert synthaug.load(tmp_path).config == gen.config


def test_a_loaded_generator_reports_its_recorded_sha256_until_its_weights_change(saved):
    from synthaug.io import weights_sha256

    gen, path = saved
    loaded = synthaug.load(path)
    recorded = json.loads((path / CONFIG_NAME).read_text())["weights"]["sha256"]
    assert weights_sha256(loaded) == recorded == weights_sha256(gen)
    with torch.no_grad():
        next(loaded.parameters()).add_(1.0)
    assert weights_sha256(loaded) != recorded


def test_gan_saves_from_before_the_network_rename_still_load(tmp_path):
    from safetensors.torch import load_file

    gen = create("gan", num_classes=3, image_shape=(1, 8, 8), **TINY["gan"])
    synthaug.save(gen, tmp_path)
    state = load_file(tmp_path / WEIGHTS_NAME)
    old = {k.replace("generator_network.", "generator.", 1): v for k, v in state.items()}
    assert any(k.startswith("generator.") for k in old)
    fresh = create("gan", num_classes=3, image_shape=(1, 8, 8), **TINY["gan"])
    fresh.load_state_dict(old)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), gen.state_dict().values()))
