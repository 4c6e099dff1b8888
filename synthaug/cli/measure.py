"""``synthaug evaluate`` and ``synthaug benchmark``: how good the samples are, and whether they help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthaug.cli.common import BUILTIN_DATA, train_test
from synthaug.cli.parsing import (
    DefaultsFormatter,
    LazyChoices,
    RawDefaultsFormatter,
    at_least_one,
    non_negative_int,
    positive_float,
    positive_int,
    share,
)

if TYPE_CHECKING:  # imported when a command runs, not when the parser is built
    from synthaug.data import LabeledImages
    from synthaug.evaluation import Arm


def _classifiers() -> tuple[str, ...]:
    from synthaug.classifier import CLASSIFIERS

    return CLASSIFIERS


#: the yardstick's ``DEFAULT_STEPS``, written out so that ``--help`` need not import the classifier package (a test compares)
CLASSIFIER_STEPS = 3000


DATA_HELP = (f"{' | '.join(BUILTIN_DATA)} | PATH of an image folder: the test images are the test split of fit --split "
             "(digits: the 1,297 outside its fixed training split; an image folder: a stratified fifth of every class)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="measure a bank against real test images (FID, KID, PRDC, CAS, memorization)",
                       formatter_class=DefaultsFormatter,
                       description="Compare a SyntheticBank with the real test images: FID, KID, precision/recall, "
                                   "density/coverage overall and per class next to the real-vs-real floor, CAS, "
                                   "and near-copies of the generator's training images. Features come from a "
                                   "domain classifier trained on the real training images (cached).",
                       epilog="example: synthaug evaluate --data fashion-mnist --bank banks/fm60 --train-per-class 60 --out reports/fm60")  # fmt: skip
    _data_arguments(e)
    e.add_argument("--bank", required=True, help="the SyntheticBank directory")
    e.add_argument("--train-per-class", type=positive_int,
                   help="the generator was trained on this stratified subset of the training split (as in `fit "
                        "--per-class`): the memorization check uses it (default: the training images the bank's "
                        "generator recorded, else all of the training split)")  # fmt: skip
    e.add_argument("--subset-seed", type=non_negative_int, default=0, help="seed of that subset")
    e.add_argument("--cas-steps", type=positive_int, default=1000, help="classifier steps for CAS")
    e.add_argument("--no-cas", action="store_true", help="skip CAS (classification accuracy of a classifier trained on the bank)")
    e.add_argument("--feature-steps", type=positive_int, default=1500, help="domain classifier training steps")
    e.add_argument("--cache", help="feature extractor cache (default: $SYNTHAUG_CACHE or ~/.cache/synthaug)")
    e.add_argument("--kid-subsets", type=positive_int, default=100, help="random subsets KID is averaged over")
    e.add_argument("--seed", type=non_negative_int, default=0, help="seed of the feature extractor, CAS and KID")
    e.add_argument("--out", default="synthaug-report", help="report directory")
    e.set_defaults(func=run_evaluate)

    b = sub.add_parser("benchmark", help="downstream accuracy: a classifier trained with and without synthetic data",
                       formatter_class=RawDefaultsFormatter,
                       description="Train the same yardstick classifier on real images only, with classic augmentation, and "
                                   "with synthetic samples from each --source, for each size and seed (each seed its own "
                                   "stratified subset); report accuracy, balanced accuracy and macro-F1 with 95% intervals "
                                   "and paired differences. Runs are cached in OUT/cache.",
                       epilog="examples:\n"
                              "  synthaug benchmark --data fashion-mnist --sizes 60 --source ddpm=runs/fm{size}-s{seed}/bank --techniques\n"
                              "  synthaug benchmark --data fashion-mnist --long-tailed 100 --sizes 600 --source ddpm=runs/lt-s{seed}/bank\n"
                              "{size} and {seed} in a --source path are replaced by each size and seed.")  # fmt: skip
    _data_arguments(b)
    b.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                   help="a bank or generator directory; {size} and {seed} in PATH are filled in (repeatable)")
    b.add_argument("--sizes", type=positive_int, nargs="+",
                   help="real images per class (the head class's with --long-tailed); default: 20 for digits, else 60")
    b.add_argument("--ratios", type=positive_float, nargs="+", default=[0.5], help="synthetic ratios")
    b.add_argument("--mode", default="append", choices=("append", "replace", "balance"), help="SyntheticAugment mode")
    b.add_argument("--keep", type=share, help="keep this share of each class's most convincing samples (banks only; default: all)")
    b.add_argument("--techniques", action="store_true",
                   help="add every technique (teacher labels and their control, a loss weight, two stages, filtering, "
                        "real/synthetic mixup, a fading share) for each source, on top of classic augmentation")
    b.add_argument("--long-tailed", type=at_least_one, metavar="IMBALANCE",
                   help="long-tailed subsets (largest / smallest class), with the loss-side baselines and balance arms "
                        "(default: balanced subsets)")  # fmt: skip
    b.add_argument("--profile", default="exponential", choices=("exponential", "step"), help="long-tailed profile")
    b.add_argument("--classifiers", nargs="+", default=["cnn"], choices=LazyChoices(_classifiers), metavar="NAME",
                   help="yardstick networks: cnn | resnet")  # listed here: the classifier package imports Lightning
    b.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2], help="one run (and subset) per seed")
    b.add_argument("--steps", type=positive_int, default=CLASSIFIER_STEPS, help="classifier steps per run")
    b.add_argument("--batch-size", type=positive_int, default=64, help="classifier batch size")
    b.add_argument("--out", default="synthaug-benchmark", help="output directory")
    b.set_defaults(func=run_benchmark)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument("--test-data", metavar="PATH", help="an image folder of held-out images (default: a fifth of --data)")
    parser.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: $SYNTHAUG_FASHION_MNIST or Debian's location)")
    parser.add_argument("--resize", type=positive_int, help="resize image-folder images to SIZE x SIZE (default: as stored)")
    parser.add_argument("--channels", type=int, choices=(1, 3), help="convert image-folder images to 1 (gray) or 3 (RGB) channels (default: as stored)")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="go on, with a warning, when the test images include images the generator was trained on "
                             "(default: refuse, since every score would be flattered)")  # fmt: skip


def run_evaluate(args: argparse.Namespace) -> int:
    from synthaug.bank import SyntheticBank
    from synthaug.evaluation import evaluate

    train, test = train_test(args.data, test=args.test_data, root=args.root, resize=args.resize, channels=args.channels)
    generator_train = None  # evaluate takes the training images the bank records, or else all of train
    if args.train_per_class is not None:
        generator_train = train.subset(args.train_per_class, seed=args.subset_seed)
    bank = SyntheticBank.open(args.bank)
    report = evaluate(test, bank, real_train=train, generator_train=generator_train, cas_steps=None if args.no_cas else args.cas_steps,
                      feature_steps=args.feature_steps, kid_subsets=args.kid_subsets, seed=args.seed, out=args.out,
                      cache_dir=args.cache, allow_overlap=args.allow_overlap)  # fmt: skip
    print(report.to_markdown().split("## Classification")[0].rstrip())
    print(f"\nfull report: {Path(args.out) / 'report.md'} (and report.json, samples.png, nearest_neighbours.png)")
    return 0


def _sources(specs: list[str], sizes: list[int], seeds: list[int]) -> dict[str, Any]:
    """``{name: source or {(size, seed): source}}``, every path checked before anything trains."""
    from synthaug.synthetic import as_source

    sources = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--source takes NAME=PATH (PATH may contain {{size}} and {{seed}}), got {spec!r}")
        if "{size}" in path or "{seed}" in path:
            sources[name] = {(size, seed): as_source(path.format(size=size, seed=seed)) for size in sizes for seed in seeds}
        else:
            sources[name] = as_source(path)
    return sources


def _arms(args: argparse.Namespace, sources: dict[str, Any]) -> list[Arm]:
    from synthaug.evaluation import Arm, long_tail_arms, long_tail_baselines, technique_arms

    classic = "real + classic"
    if args.long_tailed is not None:
        return long_tail_baselines() + long_tail_arms(sources, techniques=list(sources)[:1] if args.techniques else ())
    arms = [Arm("real"), Arm(classic, classic=True)]
    for name, source in sources.items():
        if args.mode == "balance":
            arms.append(Arm(f"real + {name} balance", source, mode="balance", keep=args.keep))
        else:
            arms += [Arm(f"real + {name} {r:g}", source, ratio=r, mode=args.mode, keep=args.keep) for r in args.ratios]
        if args.techniques:
            arms += technique_arms(name, source, ratio=args.ratios[0])
        else:
            arms.append(Arm(f"{classic} + {name} {args.ratios[0]:g}", source, ratio=args.ratios[0], mode=args.mode, keep=args.keep,
                            classic=True, against=classic))  # fmt: skip
    return arms


def run_benchmark(args: argparse.Namespace) -> int:
    from synthaug.evaluation import downstream, rarest

    train, test = train_test(args.data, test=args.test_data, root=args.root, resize=args.resize, channels=args.channels)
    sizes = args.sizes or ([20] if args.data == "digits" else [60])
    subsets = None
    if args.long_tailed is not None:
        def subsets(data: LabeledImages, size: int, seed: int) -> LabeledImages:
            return data.subset_long_tailed(size, args.long_tailed, profile=args.profile, seed=seed)

        for seed in args.seeds:  # any impossible subset is refused before anything trains
            subsets(train, max(sizes), seed)
    else:
        smallest = min(train.class_counts())
        if max(sizes) > smallest:
            raise ValueError(f"--sizes {max(sizes)} is more than the training images of the smallest class ({smallest}); "
                             f"use at most {smallest}")  # fmt: skip
    arms = _arms(args, _sources(args.source, sizes, args.seeds))
    report = downstream(train, test, arms=arms, sizes=sizes, seeds=args.seeds, classifiers=args.classifiers, steps=args.steps,
                        batch_size=args.batch_size, subsets=subsets, classic_options={"hflip": args.data != "digits"},
                        groups={"rarest 3": rarest(3)} if args.long_tailed is not None else None,
                        cache_dir=Path(args.out) / "cache", out=args.out, allow_overlap=args.allow_overlap)  # fmt: skip
    print("\n" + report.to_markdown())
    print(f"written: {Path(args.out) / 'downstream.md'} (and downstream.json, downstream.png)")
    return 0
