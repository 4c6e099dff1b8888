"""Every example runs end to end (with small budgets) as the script a user would run."""

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
    assert (tmp_path / "vae-20" / "bank" / "manifest.json").is_file()


def test_quickstart(tmp_path):
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--steps", "5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "of class '7'" in run.stdout and (tmp_path / "sevens.png").is_file()
