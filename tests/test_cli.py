"""The command line, end to end on real data."""

import json

import numpy as np
import pytest

import synthaug
from synthaug.cli import main

TINY_SET = ["--set", "latent_dim=8", "--set", "base_channels=8", "--set", "max_channels=16", "--set", "embed_dim=4"]


@pytest.mark.parametrize("command", ["demo", "fit", "sample", "evaluate", "benchmark"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: synthaug " + command in capsys.readouterr().out


def test_fit_then_sample_png_and_npz(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["fit", "--data", "digits", "--per-class", "10", "--max-steps", "4", "--batch-size", "20",
                 "--out", str(out), "--no-progress", *TINY_SET])  # fmt: skip
    assert code == 0 and (out / "generator" / "model.safetensors").is_file()
    assert synthaug.load(out / "generator").config.latent_dim == 8
    code = main(["sample", str(out / "generator"), "--per-class", "3", "--classes", "2", "5",
                 "--png", str(tmp_path / "grid.png"), "--npz", str(tmp_path / "s.npz")])  # fmt: skip
    assert code == 0 and (tmp_path / "grid.png").is_file()
    npz = np.load(tmp_path / "s.npz")
    assert npz["images"].shape == (6, 1, 8, 8) and npz["images"].dtype == np.uint8
    assert npz["labels"].tolist() == [2, 2, 2, 5, 5, 5] and list(npz["class_names"]) == list("0123456789")
    code = main(["sample", str(out / "generator"), "--per-class", "4", "--classes", "1", "--bank", str(tmp_path / "bank")])
    bank = synthaug.SyntheticBank.open(tmp_path / "bank")
    assert code == 0 and bank.class_counts() == [0, 4] + [0] * 8


def test_fit_on_fashion_mnist(fashion_root, tmp_path):
    code = main(["fit", "--data", "fashion-mnist", "--per-class", "3", "--max-steps", "2", "--batch-size", "10",
                 "--out", str(tmp_path), "--no-progress", *TINY_SET])  # fmt: skip
    generator = synthaug.load(tmp_path / "generator")
    assert code == 0 and generator.image_shape == (1, 28, 28) and generator.class_names[9] == "Ankle boot"


def test_demo(tmp_path, capsys):
    argv = ["demo", "--steps", "30", "--per-class", "20", "--bank-per-class", "20", "--classifier-steps", "5",
            "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "where everything went" in printed and str(tmp_path / "samples.png") in printed
    assert "real + synthetic" in printed and "(Δ " in printed and "CAS (train on synthetic" in printed
    assert len(printed.splitlines()) <= 30, "the demo's output fits on one screen"
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "downstream" / "downstream.md").is_file()
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "generator" / "config.json").is_file()
    assert len(synthaug.SyntheticBank.open(tmp_path / "bank")) == 200
    # A rerun with other settings replaces the demo's own bank instead of failing.
    assert main([*argv[:2], "31", *argv[3:]]) == 0  # other steps: another generator
    assert len(synthaug.SyntheticBank.open(tmp_path / "bank")) == 200


def test_benchmark_with_a_bank_per_size(tmp_path, capsys):
    for size in (4, 6):
        main(["fit", "--data", "digits", "--per-class", str(size), "--max-steps", "3", "--out", str(tmp_path / f"g{size}"),
              "--no-progress", *TINY_SET])  # fmt: skip
        main(["sample", str(tmp_path / f"g{size}" / "generator"), "--per-class", "10", "--bank", str(tmp_path / f"bank{size}")])
    argv = ["benchmark", "--data", "digits", "--sizes", "4", "6", "--source", f"vae={tmp_path}/bank{{size}}",
            "--ratios", "0.5", "1", "--seeds", "0", "--steps", "5", "--out", str(tmp_path / "bench")]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for row in ("| 4 | real |", "| 6 | real + classic |", "| 6 | real + vae 1 |", "| 4 | real + classic + vae 0.5 |"):
        assert row in printed
    report = json.loads((tmp_path / "bench" / "downstream.json").read_text())
    assert len(report["runs"]) == 2 * 5 and (tmp_path / "bench" / "downstream.png").is_file()
    assert main([*argv[:7], "vae=nowhere", *argv[8:]]) == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["fit", "--data", "imagenet", "--out", "x"], "--data must be one of"),
     (["fit", "--data", "digits", "--set", "latent_dim"], "KEY=VALUE"),
     (["sample", "nowhere", "--png", "x.png"], "does not exist"),
     (["sample", "nowhere"], "give --png PATH, --npz PATH and/or --bank DIR"),
     (["benchmark", "--data", "digits", "--source", "vae"], "NAME=PATH")],
)  # fmt: skip
def test_errors_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_sampling_an_unknown_class(tmp_path, capsys):
    main(["fit", "--data", "digits", "--per-class", "5", "--max-steps", "1", "--out", str(tmp_path), "--no-progress", *TINY_SET])
    assert main(["sample", str(tmp_path / "generator"), "--classes", "12", "--png", str(tmp_path / "g.png")]) == 2
    assert "cannot sample labels [12]" in capsys.readouterr().err


def test_evaluate_a_bank(tmp_path, capsys):
    run = tmp_path / "run"
    main(["fit", "--data", "digits", "--per-class", "20", "--max-steps", "5", "--out", str(run), "--no-progress", *TINY_SET])
    main(["sample", str(run / "generator"), "--per-class", "20", "--bank", str(tmp_path / "bank")])
    code = main(["evaluate", "--data", "digits", "--bank", str(tmp_path / "bank"), "--train-per-class", "20",
                 "--cas-steps", "5", "--feature-steps", "20", "--kid-subsets", "2", "--out", str(tmp_path / "report"),
                 "--cache", str(tmp_path / "cache")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "| fid ↓ |" in printed and (tmp_path / "report" / "report.json").is_file()


def test_version_and_family_options_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"synthaug {synthaug.__version__}"
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    assert "vae: latent_dim=32" in text and "ddpm: base_channels=null" in text and 'size="base"' in text and "gan: latent_dim=64" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["fit", "--data", "digits", "--set", "latent_dim=abc", "--max-steps", "1"], "latent_dim must be an integer, got 'abc'"),
     (["fit", "--data", "digits", "--max-steps", "1", "--resume", "last"], "nothing to resume"),
     (["benchmark", "--data", "digits", "--sizes", "60"], "more than the training images of the smallest class (50)"),
     (["benchmark", "--data", "digits", "--long-tailed", "0.5"], "argument --long-tailed: must be a number >= 1"),
     (["evaluate", "--data", "digits", "--bank", "nowhere"], "no bank at nowhere: the directory does not exist")],
)  # fmt: skip
def test_rough_edges_give_one_clear_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_sample_per_class_zero_and_unsafe_resume(tmp_path, capsys):
    main(["fit", "--data", "digits", "--per-class", "5", "--max-steps", "1", "--out", str(tmp_path), "--no-progress", *TINY_SET])
    assert main(["sample", str(tmp_path / "generator"), "--per-class", "0", "--png", str(tmp_path / "g.png")]) == 2
    assert "argument --per-class: must be a whole number >= 1, got '0'" in capsys.readouterr().err
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    torch.save({"payload": Payload()}, tmp_path / "evil.ckpt")
    assert main(["fit", "--data", "digits", "--out", str(tmp_path / "r"), "--resume", str(tmp_path / "evil.ckpt")]) == 2
    captured = capsys.readouterr()
    assert "will not unpickle" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert "unpickled!" not in captured.out + captured.err


def test_benchmark_checks_sources_before_training_and_takes_the_digits_default(tmp_path, monkeypatch, capsys):
    import synthaug.evaluation.runner as runner

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the sources were checked")

    monkeypatch.setattr(runner, "train_classifier", no_training)
    assert main(["benchmark", "--data", "digits", "--source", f"vae={tmp_path}/missing-{{seed}}", "--out", str(tmp_path)]) == 2
    assert "missing-0" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["benchmark", "--data", "digits", "--seeds", "0", "--steps", "3", "--out", str(tmp_path / "b")]) == 0
    assert "| 20 | real + classic |" in capsys.readouterr().out  # the digits default: 20 per class


def test_evaluate_and_benchmark_take_an_image_folder(digits, tmp_path, capsys):
    from PIL import Image

    for c in range(3):
        (tmp_path / "folder" / f"class_{c}").mkdir(parents=True)
        for k, image in enumerate(digits.images[digits.labels == c][:25]):
            Image.fromarray(image[0].numpy()).save(tmp_path / "folder" / f"class_{c}" / f"{k}.png")
    argv = ["benchmark", "--data", str(tmp_path / "folder"), "--sizes", "10", "--seeds", "0", "--steps", "3",
            "--out", str(tmp_path / "bench")]  # fmt: skip
    assert main(argv) == 0
    assert "| 10 | real |" in capsys.readouterr().out


def test_compress_command(tmp_path, capsys):
    tiny = ["--set", "base_channels=16", "--set", "timesteps=50", "--set", "steps=4", "--set", "dropout=0.0"]
    main(["fit", "--data", "digits", "--family", "ddpm", "--per-class", "10", "--max-steps", "3", "--batch-size", "25",
          "--out", str(tmp_path / "run"), "--no-progress", *tiny])  # fmt: skip
    argv = ["compress", str(tmp_path / "run" / "generator"), "--data", "digits", "--per-class", "10", "--prune-steps", "2",
            "--distill-steps", "2", "--out", str(tmp_path / "fast"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "4 -> 2 sampling steps" in capsys.readouterr().out
    fast = synthaug.load(tmp_path / "fast" / "generator")
    assert fast.config.steps == 2 and fast.config.block_widths is not None
    assert main(["compress", str(tmp_path / "run" / "generator"), "--method", "prune", "--out", str(tmp_path / "x")]) == 2
    assert "give --data" in capsys.readouterr().err


def test_a_ddpm_bank_with_sampling_options_from_the_cli(tmp_path, capsys):
    tiny = ["--set", "base_channels=8", "--set", "timesteps=50", "--set", "steps=4", "--set", "dropout=0.0"]
    main(["fit", "--data", "digits", "--family", "ddpm", "--per-class", "5", "--max-steps", "2", "--batch-size", "25",
          "--out", str(tmp_path / "run"), "--no-progress", *tiny])  # fmt: skip
    assert main(["sample", str(tmp_path / "run" / "generator"), "--per-class", "3", "--bank", str(tmp_path / "bank"),
                 "--set-sample", "steps=3", "guidance=1.5"]) == 0  # fmt: skip
    manifest = json.loads((tmp_path / "bank" / "manifest.json").read_text())
    assert manifest["sample_options"] == {"steps": 3, "guidance": 1.5, "sampler": "dpm++2m", "eta": 0.0, "churn": 0.0}  # EDM's
    assert main(["sample", str(tmp_path / "run" / "generator"), "--png", str(tmp_path / "g.png"), "--set-sample", "temp=1"]) == 2
    assert "its options are: churn, eta, feedback, feedback_criterion, feedback_scale, guidance, sampler, steps" in capsys.readouterr().err
    # a feedback classifier is an object: the command line cannot give one, and says so in one line
    assert main(["sample", str(tmp_path / "run" / "generator"), "--png", str(tmp_path / "g.png"),
                 "--set-sample", "feedback=runs/classifier"]) == 2  # fmt: skip
    assert "feedback must be a classifier" in capsys.readouterr().err
