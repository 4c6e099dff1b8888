"""The ``synthaug`` command line: ``demo``, ``fit``, ``sample``, ``evaluate`` and ``benchmark``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthaug.data import LabeledImages, from_image_folder, load_digits, load_fashion_mnist
from synthaug.data.labeled import to_uint8
from synthaug.generators import GENERATORS
from synthaug.visualize import save_image_grid

BUILTIN_DATA = ("digits", "fashion-mnist")


def load_data(spec: str, *, split: str = "train", root: str | None = None, resize: int | None = None) -> LabeledImages:
    """``digits``, ``fashion-mnist`` or the path of an image folder (one sub-folder per class)."""
    if spec == "digits":
        if split != "train":
            raise ValueError("digits has a single split; use --split train (or take a subset)")
        return load_digits()
    if spec == "fashion-mnist":
        return load_fashion_mnist(root, split=split)
    if Path(spec).is_dir():
        return from_image_folder(spec, resize=resize)
    raise ValueError(f"--data must be one of {BUILTIN_DATA} or an image folder; {spec!r} is neither")


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def sample_all(generator: Any, labels: torch.Tensor, *, seed: int, batch_size: int = 512) -> torch.Tensor:
    """``uint8`` samples for ``labels``, drawn in batches from one seeded ``torch.Generator``."""
    rng = torch.Generator().manual_seed(seed)
    return torch.cat([to_uint8(generator.sample(chunk, generator=rng)).cpu() for chunk in labels.split(batch_size)])


def _sample_recognition(generator: Any, data: LabeledImages, *, per_class: int = 100, seed: int = 1) -> float:
    """Share of samples that a logistic regression trained on the real images assigns to their own class."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(data.images.flatten(1).numpy() / 255.0, data.labels.numpy())
    labels = torch.arange(data.num_classes).repeat_interleave(per_class)
    fake = sample_all(generator, labels, seed=seed).flatten(1).numpy() / 255.0
    return float((clf.predict(fake) == labels.numpy()).mean())


def cmd_demo(args: argparse.Namespace) -> int:
    from synthaug.bank import BankError, SyntheticBank
    from synthaug.evaluation import Arm, downstream
    from synthaug.training import fit

    out = Path(args.out)
    train, test = load_digits().split(args.per_class, seed=args.seed)
    print(
        f"synthaug demo: scikit-learn digits (8x8, 10 classes): {len(train)} images to train on "
        f"({args.per_class} per class), {len(test)} held out for testing"
    )
    print(f"\n1. training a conditional VAE on the {len(train)} training images")
    start = time.perf_counter()
    generator = fit(train, "vae", out=out, max_steps=args.steps, batch_size=64, seed=args.seed, progress_bar=args.progress)
    print(f"   trained {args.steps} steps in {time.perf_counter() - start:.0f} s")
    recognised = _sample_recognition(generator, train)
    print(f"   a classifier fitted to the training images assigns {recognised:.1%} of 1,000 samples to their intended class")

    print(f"\n2. sampling a bank of {args.bank_per_class} images per class")
    bank_dir = out / "bank"
    try:
        bank = SyntheticBank.generate(generator, path=bank_dir, per_class=args.bank_per_class, seed=args.seed)
    except BankError:  # an earlier demo's bank with other settings: the demo owns its directory
        shutil.rmtree(bank_dir)
        bank = SyntheticBank.generate(generator, path=bank_dir, per_class=args.bank_per_class, seed=args.seed)

    print("\n3. evaluating the bank against the held-out digits (features: a CNN trained on the training split)")
    from synthaug.evaluation import evaluate

    report = evaluate(test, bank, real_train=train, cas_steps=args.classifier_steps, feature_steps=5 * args.classifier_steps,
                      kid_subsets=20, seed=args.seed, out=out / "report", cache_dir=out / "cache")  # fmt: skip
    print(f"   {'metric':<10} {'synthetic':>10} {'real floor':>11}")
    for name in ("fid", "kid", "precision", "recall", "density", "coverage"):
        print(f"   {name:<10} {report.overall[name]:>10.4g} {report.floor[name]:>11.4g}")
    print(f"   CAS (train on synthetic, test on real): {report.cas['synthetic']:.2%} (trained on real: {report.cas['real']:.2%})")
    print(f"   near-copies of training images: {report.memorization['near_copy_share']:.2%}")

    print(f"\n4. downstream: a small CNN ({args.classifier_steps} steps) on real vs real + synthetic (ratio 1), 2 seeds")
    arms = [Arm("real"), Arm("real + synthetic", bank, ratio=1.0)]
    result = downstream(train, test, arms=arms, seeds=[0, 1], steps=args.classifier_steps, out=out / "downstream", log=None)
    print("\n" + result.to_markdown().split("\nPer-class")[0].rstrip())
    print("   (2 seeds on 500 digits: a smoke test of the harness, not a measurement; see the Fashion-MNIST study)")

    print("\nwhere everything went:")
    print(f"  saved generator   {out / 'generator'}   (load it with synthaug.load)")
    print(f"  sample grid       {out / 'samples.png'}   (one row per class)")
    print(f"  grids per epoch   {out / 'samples'}/")
    print(f"  synthetic bank    {out / 'bank'}   (open it with synthaug.SyntheticBank.open)")
    print(f"  downstream table  {out / 'downstream' / 'downstream.md'}   (+ downstream.json and downstream.png)")
    print(f"  evaluation report {out / 'report' / 'report.md'}   (+ report.json and figures)")
    print(f"  checkpoints       {out / 'checkpoints'}/   (resume with synthaug fit --resume)")
    print(f"  training log      {out / 'logs'}/")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from synthaug.training import fit

    data = load_data(args.data, split=args.split, root=args.root, resize=args.resize)
    if args.per_class:
        data = data.subset(args.per_class, seed=args.subset_seed)
    devices: Any = int(args.devices) if args.devices.isdigit() else args.devices
    fit(
        data,
        args.generator,
        out=args.out,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        accelerator=args.accelerator,
        devices=devices,
        strategy=args.strategy,
        ckpt_path=args.resume,
        num_workers=args.num_workers,
        progress_bar=args.progress,
        **_parse_options(args.set),
    )
    print(f"trained {args.generator} on {data}\nsaved to {Path(args.out) / 'generator'}; sample grid at {Path(args.out) / 'samples.png'}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from synthaug.io import load

    if not (args.png or args.npz or args.bank):
        raise ValueError("nothing to write: give --png PATH, --npz PATH and/or --bank DIR")
    generator = load(args.generator, map_location=args.device)
    classes = list(range(generator.num_classes)) if args.classes is None else args.classes
    labels = generator.check_labels(classes).cpu().repeat_interleave(args.per_class)
    if args.png or args.npz:
        images = sample_all(generator, labels, seed=args.seed)
    if args.png:
        save_image_grid(images, args.png, nrow=args.per_class)
        print(f"wrote a grid of {len(images)} samples ({len(classes)} classes x {args.per_class}) to {args.png}")
    if args.npz:
        Path(args.npz).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            args.npz, images=images.numpy(), labels=labels.numpy(), class_names=np.array(generator.class_names)
        )
        print(f"wrote {len(images)} uint8 images (N, C, H, W) and labels to {args.npz}")
    if args.bank:
        from synthaug.bank import SyntheticBank

        counts = {c: args.per_class for c in classes}
        bank = SyntheticBank.generate(
            generator, path=args.bank, counts=counts, seed=args.seed, accelerator=args.device.split(":")[0]
        )
        print(f"wrote a bank of {len(bank)} samples to {args.bank} (resumable: rerun the same command after a crash)")
    return 0


def train_test(spec: str, *, root: str | None = None, digits_per_class: int = 50, seed: int = 0) -> tuple[LabeledImages, LabeledImages]:
    """The train and test splits of a built-in dataset (digits: a stratified split, ``digits_per_class`` to train)."""
    if spec not in BUILTIN_DATA:
        raise ValueError(f"--data must be one of {BUILTIN_DATA} (they have a test split), got {spec!r}")
    if spec == "digits":
        return load_digits().split(digits_per_class, seed=seed)
    return load_data(spec, split="train", root=root), load_data(spec, split="test", root=root)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from synthaug.bank import SyntheticBank
    from synthaug.evaluation import evaluate

    train, test = train_test(args.data, root=args.root, digits_per_class=args.train_per_class or 50, seed=args.subset_seed)
    if args.data == "digits":
        generator_train = train
    else:
        generator_train = train.subset(args.train_per_class, seed=args.subset_seed) if args.train_per_class else train
    bank = SyntheticBank.open(args.bank)
    report = evaluate(
        test, bank, real_train=train, generator_train=generator_train, cas_steps=args.cas_steps or None,
        feature_steps=args.feature_steps, kid_subsets=args.kid_subsets, seed=args.seed, out=args.out, cache_dir=args.cache,
    )  # fmt: skip
    print(report.to_markdown().split("## Classification")[0].rstrip())
    print(f"\nfull report: {Path(args.out) / 'report.md'} (and report.json, samples.png, nearest_neighbours.png)")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from synthaug.evaluation import Arm, downstream

    train, test = train_test(args.data, root=args.root, seed=args.subset_seed)
    classic = {"hflip": args.data != "digits"}  # mirrored digits are other digits
    arms = [Arm("real"), Arm("real + classic", classic=True)]
    for spec in args.source:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--source takes NAME=PATH (PATH may contain {{size}}), got {spec!r}")
        source = {size: path.format(size=size) for size in args.sizes} if "{size}" in path else path
        arms += [Arm(f"real + {name} {ratio:g}", source, ratio=ratio, mode=args.mode, keep=args.keep) for ratio in args.ratios]
        arms.append(Arm(f"real + classic + {name} {args.ratios[0]:g}", source, ratio=args.ratios[0], mode=args.mode,
                        keep=args.keep, classic=True))  # fmt: skip
    report = downstream(train, test, arms=arms, sizes=args.sizes, seeds=args.seeds, steps=args.steps,
                        batch_size=args.batch_size, subset_seed=args.subset_seed, classic_options=classic,
                        cache_dir=Path(args.out) / "cache", out=args.out)  # fmt: skip
    print("\n" + report.to_markdown())
    print(f"written: {Path(args.out) / 'downstream.md'} (and downstream.json, downstream.png)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthaug",
        description="Train class-conditional generators on labelled images and sample extra training data.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="train a VAE on the bundled digits and use its samples (about a minute)",
                          description="End-to-end demo on scikit-learn's digits: train a generator on a training "
                                      "split, save it, build a bank, and train a classifier with and without it.")  # fmt: skip
    demo.add_argument("--out", default="synthaug-demo", help="run directory (default: %(default)s)")
    demo.add_argument("--per-class", type=int, default=50, help="training images per class (default: %(default)s)")
    demo.add_argument("--steps", type=int, default=1500, help="generator training steps (default: %(default)s)")
    demo.add_argument("--bank-per-class", type=int, default=200, help="bank size per class (default: %(default)s)")
    demo.add_argument("--classifier-steps", type=int, default=300, help="classifier steps per run (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    demo.set_defaults(func=cmd_demo)

    fit = sub.add_parser("fit", help="train a generator on a dataset and save it",
                         description="Train a class-conditional generator with Lightning and save it to OUT/generator.",
                         epilog="example: synthaug fit --data fashion-mnist --per-class 60 --max-steps 3000 --out runs/fm")  # fmt: skip
    fit.add_argument("--data", required=True, help=f"{' | '.join(BUILTIN_DATA)} | PATH of an image folder (one sub-folder per class)")
    fit.add_argument("--split", default="train", choices=("train", "test"), help="split of a built-in dataset")
    fit.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: Debian's location)")
    fit.add_argument("--resize", type=int, help="resize image-folder images to SIZE x SIZE")
    fit.add_argument("--per-class", type=int, help="train on a stratified subset of K images per class")
    fit.add_argument("--subset-seed", type=int, default=0, help="seed of that subset (default: %(default)s)")
    fit.add_argument("--generator", default="vae", choices=sorted(GENERATORS), help="generator family (default: %(default)s)")
    fit.add_argument("--out", default="synthaug-run", help="run directory (default: %(default)s)")
    fit.add_argument("--max-steps", type=int, default=None,
                     help="optimiser steps (default: the family's default_steps: vae 2000, gan 6000, ddpm 6000)")
    fit.add_argument("--batch-size", type=int, default=64)
    fit.add_argument("--lr", type=float, help="learning rate (default: the family's)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--accelerator", default="auto", help="cpu | gpu | auto ... (Lightning)")
    fit.add_argument("--devices", default="auto", help="number of devices or 'auto' (Lightning)")
    fit.add_argument("--strategy", default="auto", help="ddp | ddp_spawn | fsdp | auto ... (Lightning)")
    fit.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    fit.add_argument("--resume", metavar="CKPT", help="Lightning checkpoint to resume from, or 'last'")
    fit.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a hyper-parameter of the family, e.g. --set latent_dim=16 (repeatable)")  # fmt: skip
    fit.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    fit.set_defaults(func=cmd_fit)

    sample = sub.add_parser("sample", help="sample a saved generator to a PNG grid, an .npz and/or a bank",
                            description="Sample a saved generator: one grid row per class, an .npz with uint8 "
                                        "images (N, C, H, W), labels and class_names, and/or a SyntheticBank.",
                            epilog="example: synthaug sample runs/fm/generator --per-class 500 --bank banks/fm")  # fmt: skip
    sample.add_argument("generator", help="directory written by fit (OUT/generator)")
    sample.add_argument("--per-class", type=int, default=8, help="samples per class (default: %(default)s)")
    sample.add_argument("--classes", type=int, nargs="+", help="class indices to sample (default: all)")
    sample.add_argument("--png", help="write a grid image here")
    sample.add_argument("--npz", help="write the samples here")
    sample.add_argument("--bank", metavar="DIR", help="write a SyntheticBank (sharded, memory-mapped) here")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="cpu", help="torch device to sample on (default: %(default)s)")
    sample.set_defaults(func=cmd_sample)

    evaluate = sub.add_parser("evaluate", help="measure a bank against real test images (FID, KID, PRDC, CAS, memorization)",
                              description="Compare a SyntheticBank with the real test split: FID, KID, precision/recall, "
                                          "density/coverage overall and per class next to the real-vs-real floor, CAS, "
                                          "and near-copies of the generator's training images. Features come from a "
                                          "domain classifier trained on the real training split (cached).",
                              epilog="example: synthaug evaluate --data fashion-mnist --bank banks/fm60 --train-per-class 60 --out reports/fm60")  # fmt: skip
    evaluate.add_argument("--data", required=True, help=" | ".join(BUILTIN_DATA))
    evaluate.add_argument("--bank", required=True, help="the SyntheticBank directory")
    evaluate.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: Debian's location)")
    evaluate.add_argument("--train-per-class", type=int,
                          help="the generator was trained on this stratified subset (as in `fit --per-class`): the "
                               "memorization check uses it; digits: the training split (default 50)")  # fmt: skip
    evaluate.add_argument("--subset-seed", type=int, default=0, help="seed of that subset (default: %(default)s)")
    evaluate.add_argument("--cas-steps", type=int, default=1000, help="classifier steps for CAS; 0 skips it")
    evaluate.add_argument("--feature-steps", type=int, default=1500, help="domain classifier training steps")
    evaluate.add_argument("--cache", help="feature extractor cache (default: $SYNTHAUG_CACHE or ~/.cache/synthaug)")
    evaluate.add_argument("--kid-subsets", type=int, default=100)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", default="synthaug-report", help="report directory (default: %(default)s)")
    evaluate.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser("benchmark", help="downstream accuracy: a classifier trained with and without synthetic data",
                           description="Train the same small CNN on real images only, with classic augmentation, and "
                                       "with synthetic samples from each --source at each --ratio (and classic + "
                                       "synthetic), for each size and seed; report test accuracy with 95%% intervals "
                                       "and paired differences to real only. Runs are cached in OUT/cache.",
                           epilog="example: synthaug benchmark --data fashion-mnist --sizes 60 "
                                  "--source vae=runs/fm-{size}/bank --ratios 0.25 0.5 1 --out runs/bench")  # fmt: skip
    bench.add_argument("--data", required=True, help=" | ".join(BUILTIN_DATA) + " (digits: a 50-per-class training split)")
    bench.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: Debian's location)")
    bench.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                       help="a bank or generator directory; {size} in PATH is replaced by each size (repeatable)")
    bench.add_argument("--sizes", type=int, nargs="+", default=[60], help="real images per class (default: %(default)s)")
    bench.add_argument("--ratios", type=float, nargs="+", default=[0.5], help="synthetic ratios (default: %(default)s)")
    bench.add_argument("--mode", default="append", choices=("append", "replace"), help="SyntheticAugment mode")
    bench.add_argument("--keep", type=float, help="keep this share of each class's most convincing samples (banks only)")
    bench.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    bench.add_argument("--steps", type=int, default=1000, help="classifier steps per run (default: %(default)s)")
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--subset-seed", type=int, default=0, help="seed of the stratified subsets (default: %(default)s)")
    bench.add_argument("--out", default="synthaug-benchmark", help="output directory (default: %(default)s)")
    bench.set_defaults(func=cmd_benchmark)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:  # BankError and CorruptSaveError are ValueErrors
        print(f"synthaug {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
