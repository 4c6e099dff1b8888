"""Provenance on digits: fingerprints, what a saved generator and a bank record, the held-out checks of
evaluate / downstream / the CLI, the digits split the CLI's own flow uses, and resume on other data."""

import json
import logging
from argparse import Namespace

import pytest
import torch
from torch import nn

import synthaug
from synthaug.bank import TRAINING_DATA_NAME, SyntheticBank
from synthaug.cli import main
from synthaug.cli.demo import resume_command
from synthaug.data import DataFingerprint, DataLeakError, load_digits
from synthaug.evaluation import Arm, downstream, evaluate
from synthaug.io import CONFIG_NAME, DATA_NAME, CorruptSaveError
from tests.conftest import QUIET, TINY_VAE

TINY_SET = [arg for key, value in TINY_VAE.items() for arg in ("--set", f"{key}={value}")]
FAST_EVAL = ["--no-cas", "--feature-steps", "5", "--kid-subsets", "2"]


def test_fingerprint_counts_shared_images_and_ignores_order(digits):
    train, test = load_digits(split="train"), load_digits(split="test")
    assert (len(train), len(test)) == (500, 1297) and train.class_counts() == [50] * 10
    fp = train.fingerprint()
    assert fp.count == 500 and fp.class_counts() == [50] * 10 and fp.summary()["hash"] == "blake2b-64"
    assert fp.overlap(test) == 0 and fp.overlap(digits) == 500 and fp.overlap(train.subset(7)) == 70
    shuffled = train.select(torch.randperm(500, generator=torch.Generator().manual_seed(0)))
    assert shuffled.fingerprint().digest == fp.digest  # the same images in another order
    assert train.subset(49).fingerprint().digest != fp.digest
    relabelled = synthaug.LabeledImages(train.images, (train.labels + 1) % 10, train.class_names)
    assert relabelled.fingerprint().digest != fp.digest  # labels count too
    both = fp.union(test.fingerprint())
    assert both.count == 1797 and both.digest == digits.fingerprint().digest and fp.union(fp) is fp


def test_fingerprint_file_round_trip_and_tampering():
    fp = load_digits(split="train").fingerprint()
    blob = fp.to_bytes()
    assert blob == fp.to_bytes() and len(blob) < 10_000  # deterministic bytes (their sha256 is recorded), small
    again = DataFingerprint.from_bytes(blob)
    assert again.digest == fp.digest and again.class_counts() == fp.class_counts()
    with pytest.raises(ValueError, match="not a synthaug data fingerprint"):
        DataFingerprint.from_bytes(b"not a safetensors file")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE fitted on 5 digits per class of the training split, and a bank of it."""
    out = tmp_path_factory.mktemp("provenance")
    data = load_digits(split="train").subset(5)
    generator = synthaug.fit(data, "vae", out=out / "run", max_steps=2, batch_size=25, **QUIET, **TINY_VAE)
    bank = SyntheticBank.generate(generator, path=out / "bank", per_class=8)
    return data, out / "run" / "generator", bank


def test_a_saved_generator_records_its_training_data(trained):
    data, path, bank = trained
    meta = json.loads((path / CONFIG_NAME).read_text())
    record = meta["training_data"]
    assert record["count"] == 50 and record["class_counts"] == [5] * 10 and record["digest"] == data.fingerprint().digest
    assert record["file"] == DATA_NAME and (path / DATA_NAME).stat().st_size == record["bytes"]
    assert synthaug.load(path).training_data.digest == record["digest"]
    assert bank.training_data.digest == record["digest"] and bank.manifest["training_data"]["count"] == 50
    assert (bank.path / TRAINING_DATA_NAME).is_file()


def test_a_modified_data_file_is_refused_and_an_old_save_loads_without_provenance(trained, tmp_path):
    _, path, _ = trained
    copy = tmp_path / "generator"
    copy.mkdir()
    for name in (CONFIG_NAME, "model.safetensors", DATA_NAME):
        (copy / name).write_bytes((path / name).read_bytes())
    blob = bytearray((copy / DATA_NAME).read_bytes())
    blob[-1] ^= 1
    (copy / DATA_NAME).write_bytes(bytes(blob))
    with pytest.raises(CorruptSaveError, match="data.safetensors does not match its recorded sha256"):
        synthaug.load(copy)
    meta = json.loads((copy / CONFIG_NAME).read_text())
    del meta["training_data"]  # as written before synthaug recorded the training data
    (copy / CONFIG_NAME).write_text(json.dumps(meta))
    (copy / DATA_NAME).unlink()
    assert synthaug.load(copy).training_data is None


def test_evaluate_refuses_a_test_set_the_generator_trained_on(trained, caplog):
    data, _, bank = trained
    kwargs = {"feature_extractor": nn.Flatten(), "cas_steps": None, "kid_subsets": 2}
    mixed = synthaug.LabeledImages(torch.cat([data.images, load_digits(split="test").images[:30]]),
                                   torch.cat([data.labels, load_digits(split="test").labels[:30]]), data.class_names)  # fmt: skip
    with pytest.raises(DataLeakError, match=r"the test set shares 50 of its 80 images with the 50 images .* allow_overlap=True"):
        evaluate(mixed, bank, **kwargs)
    with caplog.at_level(logging.WARNING, logger="synthaug"):
        report = evaluate(mixed, bank, allow_overlap=True, **kwargs)
    assert any(note.startswith("LEAK: 50 of the 80 test images") for note in report.notes)
    assert "LEAK" in caplog.text
    assert evaluate(load_digits(split="test"), bank, **kwargs).overall["fid"] >= 0  # held out: no complaint
    with pytest.raises(DataLeakError, match="generator_train"):  # the images named as the generator's are checked too
        evaluate(load_digits(split="test"), bank, generator_train=load_digits(split="test").subset(3), **kwargs)


def test_evaluate_warns_when_the_generator_recorded_nothing(trained, tmp_path, caplog):
    _, path, _ = trained
    generator = synthaug.load(path)
    generator.training_data = None  # as loaded from a save that predates provenance
    bank = SyntheticBank.generate(generator, path=tmp_path / "bank", per_class=8)
    assert bank.training_data is None and "training_data" not in bank.manifest
    with caplog.at_level(logging.WARNING, logger="synthaug"):
        evaluate(load_digits(split="test").subset(10), bank, feature_extractor=nn.Flatten(),
                 cas_steps=None, kid_subsets=2)
    assert "records no training data" in caplog.text


def test_downstream_refuses_before_anything_trains(trained, monkeypatch):
    data, path, bank = trained
    import synthaug.evaluation.runner as runner

    monkeypatch.setattr(runner, "_run", lambda *a, **k: pytest.fail("trained although the test set overlaps"))
    train = load_digits(split="train")
    for source in (bank, synthaug.load(path), str(path), {(5, 0): bank}):
        with pytest.raises(DataLeakError, match="shares 50 of its 500 images .* arm 'syn'"):
            downstream(train, train, arms=[Arm("syn", source, ratio=0.5)], sizes=[5], seeds=[0], steps=2)
    monkeypatch.undo()  # the real arm runs first; a source built per subset is checked when it is built
    with pytest.raises(DataLeakError, match="arm 'fn'"):
        downstream(train, train, arms=[Arm("fn", lambda subset: bank, ratio=0.5)], sizes=[5], seeds=[0], steps=2)


def test_resume_on_other_data_is_refused(tmp_path, capsys):
    data = load_digits(split="train").subset(5)
    synthaug.fit(data, "vae", out=tmp_path, max_steps=2, batch_size=25, **QUIET, **TINY_VAE)
    other = load_digits(split="train").subset(6)
    with pytest.raises(ValueError, match=r"trained on other data: 50 images \(digest [0-9a-f]{12}\), this run has 60 images"):
        synthaug.fit(other, "vae", out=tmp_path, max_steps=4, batch_size=25, ckpt_path="last", **QUIET, **TINY_VAE)
    argv = ["fit", "--data", "digits", "--max-steps", "4", "--batch-size", "25", "--out", str(tmp_path), "--no-progress",
            "--resume", "last", *TINY_SET]  # fmt: skip
    assert main([*argv, "--per-class", "6"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "this run has 60 images" in err and "--per-class" in err
    assert main([*argv, "--per-class", "5"]) == 0  # the same data: resumes


def test_the_cli_digits_flow_never_tests_on_training_images(tmp_path, capsys):
    """fit --data digits -> sample a bank -> evaluate --data digits: the generator's images and the test split are disjoint."""
    run, bank = tmp_path / "run", tmp_path / "bank"
    assert main(["fit", "--data", "digits", "--per-class", "5", "--max-steps", "2", "--batch-size", "25", "--out", str(run),
                 "--no-progress", *TINY_SET]) == 0  # fmt: skip
    assert main(["sample", str(run / "generator"), "--per-class", "8", "--bank", str(bank)]) == 0
    generator = synthaug.load(run / "generator")
    test = load_digits(split="test")
    assert generator.training_data.count == 50 and generator.training_data.overlap(test) == 0
    assert generator.training_data.overlap(load_digits(split="train")) == 50
    assert SyntheticBank.open(bank).training_data.digest == generator.training_data.digest
    assert main(["evaluate", "--data", "digits", "--bank", str(bank), "--out", str(tmp_path / "report"), *FAST_EVAL]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["sizes"]["real test"] == 1297 and report["memorization"]["train_size"] == 50  # the recorded 50
    capsys.readouterr()

    # A generator trained on every digit: evaluate and benchmark refuse the test split, in one line, with the fix.
    leaky, leaky_bank = tmp_path / "leaky", tmp_path / "leaky-bank"
    assert main(["fit", "--data", "digits", "--split", "all", "--max-steps", "1", "--batch-size", "25", "--out", str(leaky),
                 "--no-progress", *TINY_SET]) == 0  # fmt: skip
    assert main(["sample", str(leaky / "generator"), "--per-class", "8", "--bank", str(leaky_bank)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--data", "digits", "--bank", str(leaky_bank), "--out", str(tmp_path / "r2"), *FAST_EVAL]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "the test set shares 1,297 of its 1,297 images with the 1,797 images" in err and "--allow-overlap" in err
    bench = ["benchmark", "--data", "digits", "--sizes", "3", "--seeds", "0", "--steps", "2", "--source", f"vae={leaky_bank}",
             "--out", str(tmp_path / "bench")]  # fmt: skip
    assert main(bench) == 2 and "shares 1,297 of its 1,297 images" in capsys.readouterr().err
    assert main(["evaluate", "--data", "digits", "--bank", str(leaky_bank), "--out", str(tmp_path / "r3"), "--allow-overlap",
                 *FAST_EVAL]) == 0  # fmt: skip
    assert "LEAK" in capsys.readouterr().err


def test_the_demo_resume_hint_names_the_data():
    args = Namespace(per_class=20, seed=3, steps=30, out="synthaug-demo")
    command = resume_command(args)
    assert "--data digits --per-class 20 --subset-seed 3" in command and "--seed 3" in command
    assert command.endswith("--out synthaug-demo --resume last")


def test_compression_keeps_the_training_data_record(tmp_path, caplog):
    from synthaug.compress import compress
    from tests.conftest import TINY

    data = load_digits(split="train").subset(5)
    teacher = synthaug.fit(data, "ddpm", out=tmp_path / "t", max_steps=2, batch_size=25, **QUIET, **{**TINY["ddpm"], "base_channels": 16})
    pruned = compress(teacher, data, method="prune+distill", ratio=0.5, prune_steps=1, distill_steps=1, out=tmp_path / "c",
                      enable_progress_bar=False)  # fmt: skip
    assert pruned.training_data.digest == data.fingerprint().digest  # pruned and distilled: the teacher's images
    assert synthaug.load(tmp_path / "c" / "generator").training_data.digest == data.fingerprint().digest
    other = load_digits(split="train").subset(6)
    with caplog.at_level(logging.WARNING, logger="synthaug"):
        tuned = compress(teacher, other, method="prune", ratio=0.5, prune_steps=1, out=tmp_path / "p", enable_progress_bar=False)
    assert "pruning fine-tunes on 60 images" in caplog.text and "not on the 50 images" in caplog.text
    assert tuned.training_data.count == 60  # the union: those 60 include the teacher's 50
