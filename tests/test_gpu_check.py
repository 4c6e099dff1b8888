"""benchmarks/gpu_check.py runs its four checks tiny on the CPU, so device-placement bugs in them show up in CI."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gpu_check_runs_tiny_on_the_cpu(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    results = gpu_check.main(["--tiny", "--device", "cpu", "--parameterization", "edm", "--loader-batches", "2",
                             "--out", str(tmp_path)])
    assert results["train"]["steps"] == 4 and results["train"]["precision"] == "bf16-mixed"
    assert results["bank"]["images"] == 30 and results["live"]["workers"] == 4 and results["live"]["items"] == 32
    assert all(results[k][rate] > 0 for k, rate in [("train", "images_per_s"), ("sample", "images_per_s"),
                                                     ("bank", "images_per_s"), ("live", "items_per_s")])  # fmt: skip
    assert (tmp_path / "gpu_check.json").is_file() and "| live mixing | 4 workers" in capsys.readouterr().out
