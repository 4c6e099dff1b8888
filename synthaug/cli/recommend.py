"""``synthaug recommend DATA --budget 60m``: does synthetic data help a classifier on DATA, and with which recipe?"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from synthaug.cli.parsing import DefaultsFormatter, non_negative_int, positive_int

_UNITS = {"s": 1 / 60, "m": 1.0, "min": 1.0, "h": 60.0}


def budget(text: str) -> float:
    """Minutes from ``90s``, ``60m``, ``1.5h`` or a bare number of minutes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", text)
    if not match or not math.isfinite(float(match.group(1))) or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"must be a duration > 0 such as 60m, 1.5h or 90s, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "m"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recommend", help="does synthetic data help a classifier on my images? race recipes, write recipe.json",
        formatter_class=DefaultsFormatter,
        description="Hold out validation folds of DATA, train a generator on each fold's training part, race real-only "
                    "baselines (flips and shifts, TrivialAugment, RandAugment, mixup, CutMix) against synthetic recipes "
                    "with successive halving (Optuna), report every gain over the best baseline with its interval, and "
                    "write the winner to OUT/recipe.json. Ctrl-C leaves a resumable study: rerun the same command.",
        epilog="example: synthaug recommend fashion-mnist --per-class 60 --budget 60m --out runs/recommend-fm60\n"
               "use it:  SyntheticAugment.from_recipe('OUT/recipe.json', train) or SyntheticMix.from_recipe(...)",
    )  # fmt: skip
    p.add_argument("data", metavar="DATA", help="digits | fashion-mnist | PATH of an image folder (one sub-folder per class)")
    p.add_argument("--budget", type=budget, required=True, metavar="DURATION",
                   help="wall time for everything, generators included: 60m, 1.5h, 90s")
    p.add_argument("--per-class", type=positive_int, help="use a stratified subset of K images per class of DATA (default: every image)")
    p.add_argument("--subset-seed", type=non_negative_int, default=0, help="seed of that subset")
    p.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: Debian's location)")
    p.add_argument("--resize", type=positive_int, help="resize image-folder images to SIZE x SIZE (default: as they are)")
    p.add_argument("--validation", metavar="FOLDER", help="score on this image folder instead of validation folds of DATA (default: folds)")
    p.add_argument("--classifier", default="cnn", choices=("cnn", "resnet"), help="the yardstick network")
    p.add_argument("--families", nargs="+", default=["ddpm"], metavar="FAMILY", help="generator families to race")
    p.add_argument("--guidance", type=float, nargs="+", metavar="SCALE",
                   help="race the ddpm's samples at each classifier-free guidance scale, e.g. --guidance 0 1 2, chosen by "
                        "the validation folds (default: the generator's own scale)")  # fmt: skip
    p.add_argument("--splits", type=positive_int, default=3, help="validation folds")
    p.add_argument("--repeats", type=positive_int, help="seeds per fold (default: 1, or 3 with --validation)")
    p.add_argument("--rule", default="interval", choices=("interval", "mean"),
                   help="a synthetic recipe wins when its gain's whole 95%% interval is above 0, or its mean")
    p.add_argument("--classifier-steps", type=positive_int, help="the last rung's classifier steps (default: from the budget)")
    p.add_argument("--generator-steps", type=positive_int, help="generator steps (default: from the budget)")
    p.add_argument("--bank-per-class", type=positive_int,
                   help="synthetic samples per class (default: 16 per training image of the largest class, 100 to 1,000)")
    p.add_argument("--set", action="append", default=[], metavar="FAMILY.KEY=VALUE",
                   help="a generator hyper-parameter, e.g. --set ddpm.base_channels=32 (repeatable)")
    p.add_argument("--no-hflip", dest="hflip", action="store_false",
                   help="no horizontal flips in the classic augmentation (implied for digits)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the folds, generators and classifiers")
    p.add_argument("--out", default="synthaug-recommend", help="the study's folder (resumable)")
    p.add_argument("--storage", metavar="URL",
                   help="an Optuna storage several processes share: sqlite:///study.db, postgresql://..., redis://... or a "
                        "journal file; run the same command in each (default: OUT/study.journal)")  # fmt: skip
    p.add_argument("--study", default="recommend", help="the study's name in the storage")
    p.add_argument("--accelerator", default="auto", help="cpu | gpu | auto ... (Lightning)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=run)


def _generator_options(pairs: list[str]) -> dict[str, dict[str, Any]]:
    from synthaug.cli.common import parse_options

    options: dict[str, dict[str, Any]] = {}
    for key, value in parse_options(pairs).items():
        family, dot, name = key.partition(".")
        if not dot or not name:
            raise ValueError(f"--set takes FAMILY.KEY=VALUE (e.g. ddpm.base_channels=32), got {key!r}")
        options.setdefault(family, {})[name] = value
    return options


class _Bar:
    """One bar over the budget's estimated seconds, with the leader and an ETA (a line every tenth off a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar, self.tenth = enabled, None, -1

    def __call__(self, progress: Any) -> None:
        if not self.enabled:
            return
        if sys.stderr.isatty():
            if self.bar is None:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=round(progress.total), unit="s", desc="recommend", file=sys.stderr,
                                bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")  # fmt: skip
            self.bar.n = round(progress.done)
            self.bar.set_postfix_str(f"{progress.stage}, leader: {progress.leader or '-'}", refresh=True)
            return
        tenth = int(10 * progress.done / max(progress.total, 1e-9))
        if tenth > self.tenth:
            self.tenth = tenth
            print(f"recommend: {10 * tenth}% of the estimate ({progress.stage}), leader: {progress.leader or '-'}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from synthaug.cli.common import load_data
    from synthaug.recommend import recommend

    data = load_data(args.data, split="train" if args.data in ("digits", "fashion-mnist") else "all", root=args.root,
                     resize=args.resize)  # fmt: skip
    if args.per_class:
        data = data.subset(args.per_class, seed=args.subset_seed)
    validation = load_data(args.validation, split="all", resize=args.resize) if args.validation else None
    hflip = args.hflip and args.data != "digits"
    bar = _Bar(args.progress)
    try:
        report = recommend(
            data, budget_minutes=args.budget, classifier=args.classifier, families=args.families, validation=validation,
            splits=args.splits, repeats=args.repeats, seed=args.seed, out=args.out, storage=args.storage, guidance=args.guidance,
            study_name=args.study, rule=args.rule, classifier_steps=args.classifier_steps,
            generator_steps=args.generator_steps, generator_options=_generator_options(args.set),
            bank_per_class=args.bank_per_class, classic_options={} if hflip else {"hflip": False},
            accelerator=args.accelerator, progress=bar,
        )  # fmt: skip
    except KeyboardInterrupt:
        bar.close()
        partial = Path(args.out) / "report.md"
        where = f"; the partial report is in {partial}" if partial.is_file() else ""
        print(f"synthaug recommend: interrupted{where}; rerun the same command to resume", file=sys.stderr)
        return 130
    bar.close()
    print(report.to_markdown())
    print(f"recipe: {report.recipe}  (report: {Path(args.out) / 'report.md'})")
    print(f"use it: SyntheticAugment.from_recipe({report.recipe!r}, train) for appended samples, "
          f"SyntheticMix.from_recipe({report.recipe!r}, train) for mixed batches, or "
          f"synthaug.recipe_training({report.recipe!r}, train) for everything at once")  # fmt: skip
    return 0
