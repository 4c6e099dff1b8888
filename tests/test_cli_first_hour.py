"""A new user's first hour with the command line: fast help, validated numbers, one-line errors that name the
real cause and the flag that fixes it, no silent surprises, and no noise from Lightning."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import synthaug
from synthaug.cli import build_parser, main
from synthaug.cli.parsing import help_texts

TINY_VAE = ["--set", "latent_dim=8", "--set", "base_channels=8", "--set", "max_channels=16", "--set", "embed_dim=4"]
TINY_GAN = ["--set", "latent_dim=8", "--set", "generator_channels=8", "--set", "discriminator_channels=8",
            "--set", "max_channels=16"]  # fmt: skip
#: the commands whose options this file checks
COMMANDS = ("demo", "fit", "sample", "compress", "evaluate", "benchmark", "recommend")
#: what Lightning prints when nobody quiets it
BANNERS = ("GPU available", "TPU available", "💡", "LeafSpec", "litlogger", "litmodels")


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny VAE fitted through the CLI: OUT with checkpoints and a saved generator."""
    out = tmp_path_factory.mktemp("first-hour") / "run"
    assert main(["fit", "--data", "digits", "--per-class", "5", "--max-steps", "2", "--batch-size", "25", "--out", str(out),
                 "--no-progress", *TINY_VAE]) == 0  # fmt: skip
    return out


# --- fast start ---------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["sample", "--help"], ["benchmark", "--help"], ["fit", "--help"]])
def test_help_imports_no_lightning(argv):
    code = (f"import sys\nfrom synthaug.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    loaded = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stderr
    # fit --help lists every family's defaults, which live in the generator modules (torch, still no Lightning)
    assert loaded == ("['torch']" if argv[0] == "fit" else "[]"), loaded


def test_python_dash_m_synthaug():
    done = subprocess.run([sys.executable, "-m", "synthaug", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"synthaug {synthaug.__version__}"


def test_every_option_shows_its_default():
    parser = build_parser()
    help_texts(parser)  # resolves the help texts computed on demand
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name not in COMMANDS:
                    continue
                for option in sub._actions:
                    takes_value = option.option_strings and option.nargs != 0 and not option.required
                    if takes_value and option.help is not argparse.SUPPRESS:
                        shown = sub._get_formatter()._get_help_string(option)
                        if "default" not in (shown or ""):
                            missing.append(f"{name} {option.option_strings[0]}")
    assert not missing, missing


def test_help_texts_list_the_library_values():
    from synthaug.classifier import CLASSIFIERS, DEFAULT_STEPS
    from synthaug.compress import METHODS
    from synthaug.generators import GENERATORS

    texts = help_texts(build_parser())
    assert all(method in texts["compress"] for method in METHODS)
    assert all(name in texts["benchmark"] for name in CLASSIFIERS) and f"(default: {DEFAULT_STEPS})" in texts["benchmark"]
    for name, cls in GENERATORS.items():  # the ar family's step default included
        assert f"{name} {cls.default_steps}" in texts["fit"]


def test_the_package_root_loads_lazily_and_keeps_every_name():
    code = ("import sys, synthaug\nassert 'torch' not in sys.modules\n"
            "from synthaug.compress import METHODS\nassert callable(synthaug.compress), synthaug.compress\n"
            "for name in synthaug.__all__:\n    exec(f'from synthaug import {name}')\n"
            "assert synthaug.fit.__module__ == 'synthaug.training'\nprint('ok')")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


# --- validated numbers ---------------------------------------------------------------------------

NUMERIC = [
    (["fit", "--data", "digits"], "--per-class"), (["fit", "--data", "digits"], "--max-steps"),
    (["fit", "--data", "digits"], "--batch-size"), (["fit", "--data", "digits"], "--lr"),
    (["fit", "--data", "digits"], "--resize"), (["fit", "--data", "digits"], "--devices"),
    (["sample", "g"], "--per-class"), (["compress", "g"], "--ratio"), (["compress", "g"], "--prune-steps"),
    (["compress", "g"], "--per-class"), (["evaluate", "--data", "digits", "--bank", "b"], "--train-per-class"),
    (["evaluate", "--data", "digits", "--bank", "b"], "--feature-steps"),
    (["evaluate", "--data", "digits", "--bank", "b"], "--cas-steps"),
    (["evaluate", "--data", "digits", "--bank", "b"], "--kid-subsets"), (["benchmark", "--data", "digits"], "--sizes"),
    (["benchmark", "--data", "digits"], "--ratios"), (["benchmark", "--data", "digits"], "--keep"),
    (["benchmark", "--data", "digits"], "--steps"), (["demo"], "--steps"), (["demo"], "--bank-per-class"),
]  # fmt: skip


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "abc"])
@pytest.mark.parametrize(("argv", "flag"), NUMERIC, ids=[f"{a[0]} {f}" for a, f in NUMERIC])
def test_numeric_flags_refuse_zero_negative_nonfinite_and_words(argv, flag, bad, capsys):
    if flag == "--devices" and bad == "-1":
        pytest.skip("--devices -1 is Lightning's 'all devices'")
    code, _, err = _run([*argv, flag, bad], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"argument {flag}:" in err and repr(bad) in err, err


@pytest.mark.parametrize("flag", ["--seed", "--num-workers", "--subset-seed"])
def test_counts_from_zero_refuse_negatives_only(flag, capsys):
    code, _, err = _run(["fit", "--data", "digits", flag, "-1"], capsys)
    assert code == 2 and f"argument {flag}: must be a whole number >= 0" in err


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda d: synthaug.fit(d, max_steps=0), "max_steps must be a whole number >= 1, got 0"),
     (lambda d: synthaug.fit(d, batch_size="64"), "batch_size must be a whole number >= 1, got '64'"),
     (lambda d: synthaug.fit(d, lr=float("nan")), "lr must be a finite number > 0, got nan"),
     (lambda d: synthaug.fit(d, seed=-1), "seed must be a whole number >= 0, got -1"),
     (lambda d: synthaug.fit(d, max_steps=2.5), "max_steps must be a whole number >= 1, got 2.5"),
     (lambda d: synthaug.compress("nowhere", d, ratio=0), "ratio must be a finite number > 0 and < 1, got 0"),
     (lambda d: synthaug.compress("nowhere", d, student_steps=9), "student_steps must be a whole number between 1 and 4"),
     (lambda d: synthaug.SyntheticAugment(d, d, ratio="0.5"), "ratio must be a number"),
     (lambda d: __import__("synthaug.evaluation", fromlist=["evaluate"]).evaluate(d, d, cas_steps=0),
      "cas_steps must be a whole number >= 1, got 0")],
)  # fmt: skip
def test_the_python_api_names_the_bad_argument(call, message, digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((TypeError, ValueError), match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        call(digits.subset(2, seed=0))


# --- one-line errors that name the cause ----------------------------------------------------------


def _rows(run: Path, tmp: Path) -> list[tuple[list, str, str | None]]:
    """(argv, what stderr must say, what it must not say)."""
    (tmp / "notes.txt").write_text("hello\n")
    (tmp / "truncated.ckpt").write_bytes((run / "checkpoints" / "last.ckpt").read_bytes()[:1000])
    (tmp / "a-file").write_bytes(b"x")
    mixed = tmp / "mixed"
    from PIL import Image

    for c, mode in enumerate(("L", "RGB")):
        (mixed / f"class_{c}").mkdir(parents=True)
        for k in range(3):
            Image.new(mode, (8, 8)).save(mixed / f"class_{c}" / f"{k}.png")
    fit = ["fit", "--data", "digits", "--max-steps", "1", "--no-progress", *TINY_VAE]
    gen = run / "generator"
    return [
        ([*fit, "--out", tmp / "r1", "--resume", tmp / "truncated.ckpt"], "truncated.ckpt is not a checkpoint", None),
        ([*fit, "--out", tmp / "r1", "--resume", tmp / "notes.txt"], "notes.txt is not a checkpoint", "unpickle"),
        ([*fit, "--out", tmp / "r1", "--resume", gen / "model.safetensors"], "is a safetensors weights file", None),
        ([*fit, "--out", tmp / "r1", "--resume", gen], "is a folder, not a checkpoint", None),
        ([*fit, "--out", tmp / "r1", "--resume", tmp / "nowhere.ckpt"], "leave out --resume", "ckpt_path"),
        ([*fit, "--out", run], "already holds a run", None),
        (["sample", gen, "--bank", tmp / "a-file"], "--bank", None),
        (["evaluate", "--data", "digits", "--bank", tmp / "a-file"], "is a file, not a bank", None),
        (["evaluate", "--data", "digits", "--bank", tmp / "nowhere"], "the directory does not exist", "manifest.json"),
        (["benchmark", "--data", "digits", "--source", f"vae={tmp / 'a-file'}"], "a-file is a file", "no saved generator"),
        (["benchmark", "--data", "digits", "--source", f"vae={tmp}"], "holds neither a bank", "no saved generator"),
        (["sample", run / "checkpoints" / "last.ckpt", "--png", tmp / "g.png"], "is a Lightning training checkpoint",
         "does not exist"),
        (["evaluate", "--data", "digits", "--bank", "b", "--feature-steps", "0"], "argument --feature-steps", "feature_steps"),
        (["fit", "--data", mixed, "--out", tmp / "r2"], "--channels 3", "channels="),
        (["fit", "--data", "fashion-mnist", "--root", tmp / "nowhere", "--out", tmp / "r3"], "--root", "root="),
        (["compress", gen, "--method", "prune"], "give --data", "data="),
        (["sample", gen, "--npz", tmp / "t.png"], "must end in .npz", None),
        (["sample", gen, "--png", tmp / "missing" / "dir" / "x.png"], "does not exist", None),
        (["sample", gen, "--png", tmp / "g.png", "--accelerator", "gpu"], "torch sees no CUDA GPU", None),
        ([*fit, "--out", tmp / "r4", "--accelerator", "gpu"], "torch sees no CUDA GPU", None),
    ]


def test_every_bad_input_gets_one_line_naming_its_cause(run, tmp_path, monkeypatch, capsys):
    import torch

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    failures = []
    for argv, says, never in _rows(run, tmp_path):
        if "gpu" in argv and torch.cuda.is_available():
            continue
        code, _, err = _run(argv, capsys)
        lines = err.strip().splitlines()
        ok = code == 2 and len(lines) == 1 and says in err and (never is None or never not in err) and "Traceback" not in err
        if not ok:
            failures.append(f"{' '.join(map(str, argv[:3]))}: code {code}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "missing").exists(), "sample --png created folders it was not asked for"


@pytest.mark.parametrize(
    "argv",
    [["fit", "--data", "digits", "--out", "r1", "--resume", "nowhere.ckpt"], ["fit", "--data", "digits", "--per-class", "0"],
     ["fit", "--data", "imagenet"], ["sample", "nowhere", "--png", "g.png"], ["sample", "g", "--npz", "t.png"],
     ["evaluate", "--data", "digits", "--bank", "nowhere"], ["benchmark", "--data", "digits", "--source", "vae"],
     ["compress", "g", "--ratio", "1"]],
)  # fmt: skip
def test_the_troubleshooting_page_quotes_the_messages(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    page = (Path(__file__).parents[1] / "docs" / "troubleshooting.md").read_text()
    code, _, err = _run(argv, capsys)
    message = err.strip().split(": error: ", 1)[1]
    assert code == 2 and f"`{message}`" in page, message


def test_load_of_a_checkpoint_says_what_it_is(run):
    with pytest.raises(ValueError, match="is a Lightning training checkpoint, not a saved generator"):
        synthaug.load(run / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match="give its directory"):
        synthaug.load(run / "generator" / "config.json")


def test_string_labels_are_refused_with_their_type(run):
    generator = synthaug.load(run / "generator")
    with pytest.raises(TypeError, match="labels must be integer class indices 0..9, got the string '3'"):
        generator.sample(["3"])


# --- no silent surprises -----------------------------------------------------------------------------


def test_outputs_are_written_where_asked(run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(["sample", run / "generator", "--per-class", "2", "--npz", "s.npz", "--png", "grids/a/g.png"], capsys)
    assert code == 0 and (tmp_path / "s.npz").is_file() and (tmp_path / "grids" / "a" / "g.png").is_file()
    assert "to s.npz" in out and "to grids/a/g.png" in out


def test_an_existing_run_is_resumed_or_overwritten_only_when_asked(run, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(run, out)
    fit = ["fit", "--data", "digits", "--per-class", "5", "--batch-size", "25", "--no-progress", "--out", out, *TINY_VAE]
    code, _, err = _run([*fit, "--max-steps", "2"], capsys)
    assert code == 2 and "--resume last" in err and "--overwrite" in err
    (out / "checkpoints" / "stale.ckpt").write_bytes(b"old")
    assert _run([*fit, "--max-steps", "2", "--overwrite"], capsys)[0] == 0
    assert not (out / "checkpoints" / "stale.ckpt").exists()
    assert _run([*fit, "--max-steps", "3", "--resume", "last"], capsys)[0] == 0


def test_a_bank_repeated_many_times_an_epoch_warns(digits_generator, digits, tmp_path):
    bank = synthaug.SyntheticBank.generate(digits_generator, path=tmp_path / "bank", per_class=10, seed=0)
    with pytest.warns(UserWarning, match=r"a source of 100 synthetic samples fills 898 synthetic items per epoch "
                                         r"\(1797 real images, ratio 0\.5\): each sample recurs about 9\.0 times"):  # fmt: skip
        synthaug.SyntheticAugment(digits, bank, ratio=0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synthaug.SyntheticAugment(digits.subset(10, seed=0), bank, ratio=0.5)  # 50 items from 100 samples: quiet


# --- one device vocabulary, and quiet commands ---------------------------------------------------------------


def test_sample_device_is_a_deprecated_alias(run, tmp_path, capsys):
    code, out, err = _run(["sample", run / "generator", "--png", tmp_path / "g.png", "--device", "cpu"], capsys)
    assert code == 0 and (tmp_path / "g.png").is_file()
    assert err.strip() == ("synthaug: warning: sample --device is deprecated and will be removed in 0.3; use --accelerator "
                           "and --devices (as in fit), e.g. --accelerator gpu --devices 1")  # fmt: skip
    code, _, err = _run(["sample", run / "generator", "--png", tmp_path / "h.png", "--accelerator", "cpu", "--devices", "1"],
                        capsys)  # fmt: skip
    assert code == 0 and err == ""


def test_the_gan_fits_without_a_warning(tmp_path, capsys):
    code, _, err = _run(["fit", "--data", "digits", "--per-class", "5", "--max-steps", "4", "--batch-size", "20", "--family",
                         "gan", "--out", tmp_path, "--no-progress", *TINY_GAN], capsys)  # fmt: skip
    assert code == 0 and err == "", err
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_commands_print_no_lightning_banner(run, tmp_path, capsys):
    code, _, err = _run(["sample", run / "generator", "--bank", tmp_path / "bank", "--per-class", "3"], capsys)
    assert code == 0 and not any(banner in err for banner in BANNERS), err
    assert len(synthaug.SyntheticBank.open(tmp_path / "bank")) == 30
