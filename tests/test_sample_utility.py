"""benchmarks/sample_utility.py end to end, tiny: the guidance scale is chosen on the validation split
(never the test set), every bank and run is cached, and bad arguments are refused."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(fashion_root, tmp_path_factory):
    """Two seeds' ddpms of the low-data study, 3 steps on 2 images per class."""
    out = tmp_path_factory.mktemp("study")
    argv = [sys.executable, str(ROOT / "examples" / "fashion_mnist_low_data.py"), "--sizes", "2", "--families", "ddpm",
            "--seeds", "0", "1", "--steps", "ddpm=3", "--bank-per-class", "4", "--stage", "generators", "--out", str(out)]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=out)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def _utility(study: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(ROOT / "benchmarks" / "sample_utility.py"), "--generators", str(study), "--size", "2",
            "--seeds", "0", "1", "--bank-per-class", "4", "--fresh-factor", "2", "--validation-per-class", "5",
            "--classifier-steps", "3", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), *extra]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_guidance_is_chosen_on_validation_and_everything_is_cached(study, tmp_path):
    run = _utility(study, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    seed_dir = study / "generators" / "size-2" / "seed-0" / "ddpm"
    for bank, count in [("bank", 40), ("bank-guidance-0.5", 40), ("bank-guidance-2", 40), ("bank-guidance-1-x2", 80)]:
        manifest = json.loads((seed_dir / bank / "manifest.json").read_text())
        assert sum(manifest["counts"]) == count, bank
    assert json.loads((seed_dir / "bank-guidance-2" / "manifest.json").read_text())["sample_options"]["guidance"] == 2.0

    summary = json.loads((tmp_path / "out" / "sample_utility.json").read_text())
    tests = json.loads((tmp_path / "out" / "downstream.json").read_text())["runs"]
    for row in summary["rows"]:  # the choice is the validation's best (ties to the default), and its test run is that scale's
        scores = {float(g): acc for g, acc in row["validation"].items()}
        assert scores[row["chosen"]] == max(scores.values())
        assert row["chosen"] == 1.0 or scores[1.0] < max(scores.values())
        chosen = [r for r in tests if r["seed"] == row["seed"] and r["arm"].endswith("guidance chosen on validation")]
        same = [r for r in tests if r["seed"] == row["seed"] and r["arm"] == f"real + classic + RA + ddpm g{row['chosen']:g} mixup"]
        assert len(chosen) == len(same) == 1 and chosen[0]["accuracy"] == same[0]["accuracy"]
    table = run.stdout
    assert "| seed | g0.5 | g1 | g2 | chosen |" in table
    for arm in ("real + classic + RA + real copies mixup", "real + classic + RA + ddpm g2 mixup", "real + classic + RA + ddpm g1 x2 mixup"):
        assert f"| {arm} |" in table, arm
    cached = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.json")}
    assert len(cached) == 2 * (4 + 6)  # per seed: real + 3 scales on validation; real, control, 3 scales, x2 on test
    again = _utility(study, tmp_path)
    assert again.returncode == 0 and {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.json")} == cached
    assert again.stdout == run.stdout


@pytest.mark.parametrize(("extra", "message"), [
    (["--guidance", "0.5", "2"], "--guidance must include 1"),
    (["--fresh-factor", "0"], "--fresh-factor must be >= 1"),
    (["--seeds", "7"], "no generator at"),
])  # fmt: skip
def test_bad_arguments_are_one_clear_line(study, tmp_path, extra, message):
    run = _utility(study, tmp_path, *extra)
    assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr
