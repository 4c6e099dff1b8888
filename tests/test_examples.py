"""Every example runs end to end (with small budgets) as the script a user would run."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("name", ["augment_pytorch", "augment_lightning", "augment_huggingface", "augment_albumentations"])
def test_integration_example(name, tmp_path):
    if name == "augment_huggingface":
        pytest.importorskip("datasets")
    if name == "augment_albumentations":
        pytest.importorskip("albumentations")
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(tmp_path), "--generator-steps", "20", "--steps", "5"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "test accuracy" in run.stdout
    banners = ("GPU available", "TPU available", "💡", "LeafSpec", "Warning", "warn")
    assert not any(banner in run.stderr for banner in banners), run.stderr[-3000:]  # Lightning kept quiet
    assert (tmp_path / "vae-20" / "bank" / "manifest.json").is_file()


def test_quickstart(tmp_path):
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--steps", "5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "of class '7'" in run.stdout and (tmp_path / "sevens.png").is_file()


def test_fashion_mnist_low_data_study(fashion_root, tmp_path):
    argv = [sys.executable, str(EXAMPLES / "fashion_mnist_low_data.py"), "--sizes", "2", "--families", "vae", "--seeds", "0", "1",
            "--steps", "vae=10", "--bank-per-class", "10", "--classifiers", "cnn", "--full-sizes", "2", "--classifier-steps", "6",
            "--out", str(tmp_path / "study"), "--cache", str(tmp_path / "cache")]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for arm in ("real", "real + classic", "real + vae 0.5", "real + classic + vae teacher", "real + classic + real copies teacher",
                "real + classic + vae then real", "real + classic + vae filtered", "real + classic + vae mixup",
                "real + classic + real copies mixup", "real + classic + vae fading", "real + classic + vae weight 0.5"):  # fmt: skip
        assert f"| 2 | {arm} |" in run.stdout, arm
    assert (tmp_path / "study" / "generators" / "size-2" / "seed-1" / "vae" / "bank" / "manifest.json").is_file()
    assert (tmp_path / "study" / "downstream.png").is_file()
    assert "| 2 | cnn | real + classic + vae mixup | real + classic + real copies mixup |" in run.stdout
    cached = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.json")}
    assert len(cached) == 2 * 12
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)  # everything cached
    assert rerun.returncode == 0 and "fit vae" not in rerun.stderr
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.json")} == cached
    wrong = subprocess.run(argv + ["--partial-arms", "real", "real + nope"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert wrong.returncode == 2 and "unknown ['real + nope']" in wrong.stderr


def test_fashion_mnist_long_tailed_study(fashion_root, tmp_path):
    argv = [sys.executable, str(EXAMPLES / "fashion_mnist_long_tailed.py"), "--head", "12", "--imbalance", "4", "--seeds", "0",
            "1", "--families", "vae", "--steps", "vae=5", "--bank-per-class", "12", "--classifiers", "cnn", "--classifier-steps",
            "6", "--out", str(tmp_path / "lt"), "--cache", str(tmp_path / "cache")]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=EXAMPLES)
    assert run.returncode == 0, run.stderr[-3000:]
    for arm in ("real", "classic + logit adjustment", "classic + mixup + DRW", "classic + vae balance",
                "classic + mixup + vae balance", "classic + logit adjustment + vae 1", "classic + mixup + DRW + vae 1",
                "classic + vae balance teacher"):
        assert f"| 12 | {arm} |" in run.stdout, arm
    assert "rarest 3 acc." in run.stdout
    report = json.loads((tmp_path / "lt" / "downstream.json").read_text())
    counts = {tuple(r["counts"]) for r in report["runs"] if r["seed"] == 0}
    assert len(counts) == 1 and sorted(next(iter(counts)), reverse=True)[0] == 12 and min(next(iter(counts))) == 3
    picked = subprocess.run(argv + ["--arms", "classic + logit adjustment + vae 1"], capture_output=True, text=True,
                            timeout=300, cwd=EXAMPLES)  # fmt: skip
    assert picked.returncode == 0, picked.stderr[-3000:]
    table = [line for line in picked.stdout.splitlines() if line.startswith("| 12 | ")]
    arms = {fields[2] if fields[1] == "cnn" else fields[1] for fields in (line.split(" | ") for line in table)}
    assert arms == {"real", "real + classic", "classic + logit adjustment", "classic + logit adjustment + vae 1"}, arms


def test_select_arms_keeps_what_each_arm_is_compared_with(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from fashion_mnist_low_data import select_arms

    from synthaug.evaluation import Arm

    arms = [Arm("real + classic", classic=True), Arm("classic + LA", classic=True, logit_adjust=1.0, against="real + classic"),
            Arm("classic + LA + x", classic=True, logit_adjust=1.0, against="classic + LA"),
            Arm("classic + mixup", classic=True, mixup_alpha=0.2, against="real + classic")]  # fmt: skip
    parser = argparse.ArgumentParser()
    assert select_arms(arms, ["classic + LA + x"], "--arms", parser) == {"classic + LA + x", "classic + LA", "real + classic"}
    assert select_arms(arms, ["real"], "--arms", parser) == {"real"}  # downstream adds it to every study
    with pytest.raises(SystemExit):
        select_arms(arms, ["classic + LA", "classic + nope"], "--arms", parser)
    assert "--arms: unknown ['classic + nope']; the arms are ['real + classic', 'classic + LA'" in capsys.readouterr().err


def test_fashion_mnist_low_data_study_against_the_strong_baselines(fashion_root, tmp_path):
    pytest.importorskip("kornia")
    argv = [sys.executable, str(EXAMPLES / "fashion_mnist_low_data.py"), "--sizes", "2", "--families", "vae", "--seeds", "0", "1",
            "--steps", "vae=5", "--bank-per-class", "10", "--classifiers", "cnn", "--full-sizes", "2", "--classifier-steps", "4",
            "--out", str(tmp_path / "study"), "--cache", str(tmp_path / "cache"), "--bases", "TA"]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for arm in ("real + classic + RA + real copies cutmix", "real + classic + TA + vae", "real + classic + TA + vae mixup"):
        assert f"| 2 | {arm} |" in run.stdout, arm
    assert "| 2 | cnn | real + classic + TA + vae cutmix | real + classic + TA + real copies cutmix |" in run.stdout
    assert "strongest baseline" in run.stdout
