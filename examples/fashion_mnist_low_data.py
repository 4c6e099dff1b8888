"""The Fashion-MNIST low-data study: does synthaug's synthetic data make a better classifier, and which technique?

    python examples/fashion_mnist_low_data.py                         # everything missing, then the table and plot
    python examples/fashion_mnist_low_data.py --stage generators --part 1/2 --threads 1   # half the generators
    python examples/fashion_mnist_low_data.py --classifiers resnet --threads 1             # one classifier's runs

For each size (real images per class) and seed, the seed's own stratified subset of the 60,000
training images; on exactly those images each generator family trains (``--steps``, fixed step
counts, so results do not depend on how busy the machine is) and draws a bank of ``--bank-per-class``
samples per class (ddpm and vae: 3,000 and 2,000 steps at 60 per class, 1,500 at 10 per class, where an
epoch is a step). ``synthaug.evaluation.downstream`` then trains each yardstick classifier on
every arm, pairs the arms by seed and tests on the full 10,000-image test set:

* real only; real + classic augmentation (flips, shifts of up to 3 pixels): the sanity gate;
* real + ddpm (ratio 0.5, appended) and real + classic + each family;
* on top of real + classic, for ddpm: soft teacher labels (the real + classic model labels the
  samples, temperature 2) and their control (the same distillation on copies of the real images),
  a loss weight of 0.5, two stages (then a sixth of the steps on the real images, head only), two-sided
  filtering, real/synthetic mixup and its control (the same mixup with copies of the real images),
  and a synthetic share that fades to zero.

With ``--bases TA`` (or ``classic``, ``RA``) the study runs against the strongest cheap baselines
instead (``benchmarks/baselines.py`` finds which): the real-only grid of
:func:`~synthaug.evaluation.baseline_arms` (flips and shifts, TrivialAugment, RandAugment, each with
no mixing, mixup or CutMix with real copies) and, on each base, the first family's samples appended,
as mixup partners and as CutMix partners (:func:`~synthaug.evaluation.synthetic_arms`), each against
its real-copies control; the samples pass through the same policy as the real images.

The CNN runs every arm at 60 per class, and at 10 per class the core arms (real, classic, classic +
ddpm, its teacher labels and their control, two stages) and classic + vae; the ResNet (a second
network, so that no conclusion rests on one) runs the core arms at 60 per class
(``--full-classifiers``, ``--full-sizes``, ``--partial-sizes``, ``--partial-arms``).

Everything is cached (generators with their checkpoints, banks, one JSON per run), so an
interrupted study resumes and a rerun computes only what is missing. The runs share their cache with
``benchmarks/yardstick.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import synthaug
from synthaug.bank import SyntheticBank
from synthaug.classic import Transformed, classic_augmentation
from synthaug.classifier import CLASSIFIERS, DEFAULT_STEPS, make_classifier, train_classifier
from synthaug.cli.common import parse_options
from synthaug.data import LabeledImages, load_fashion_mnist
from synthaug.evaluation import (
    Arm,
    DownstreamReport,
    baseline_arms,
    downstream,
    policy_arm,
    real_copies,
    synthetic_arms,
    technique_arms,
)
from synthaug.evaluation.arms import POLICY_NAMES
from synthaug.policies import AugmentPolicy
from synthaug.training import describe_stale, stale_options

FAMILY_STEPS = {"vae": 2000, "ddpm": 3000, "gan": 6000, "ar": 3000}


def trained_bank(family: str, subset: LabeledImages, run: Path, steps: int, per_class: int, **options) -> SyntheticBank:
    """``family`` trained on ``subset`` for ``steps`` with ``options`` (resumed if interrupted), and its bank."""
    if not (run / "generator" / "config.json").is_file():
        last = run / "checkpoints" / "last.ckpt"
        synthaug.fit(subset, family, out=run, seed=0, max_steps=steps, ckpt_path="last" if last.exists() else None, **options)
    generator = synthaug.load(run / "generator")
    stale = stale_options(generator, family, **options)
    if stale:  # a default changed since this run was cached: do not mix two generators into one study
        changes = describe_stale(stale)
        raise SystemExit(f"{run} holds a {family} trained with other options than these ({changes}): give another "
                         f"--out for a new study, --generator-options {next(iter(stale))}=... to study that generator, "
                         "or delete that folder to retrain it")  # fmt: skip
    return SyntheticBank.generate(generator, path=run / "bank", per_class=per_class, seed=1)


def feedback_bank(subset: LabeledImages, run: Path, per_class: int, scale: float, seed: int, steps: int) -> SyntheticBank:
    """A bank of the generator in ``run`` sampled with classifier feedback (Askari-Hemmat et al. 2023): a
    yardstick CNN trained on ``subset`` (flips, shifts and TrivialAugment; cached) steers each sample towards
    where it is unsure."""
    path = run / "feedback-classifier.safetensors"
    model = make_classifier("cnn", subset.image_shape, subset.num_classes)
    if path.is_file():
        model.load_state_dict(load_file(path))
    else:
        augmented = Transformed(subset, classic_augmentation(subset.image_shape, seed=seed))
        model = train_classifier(augmented, model=model, steps=steps, seed=seed, policy=AugmentPolicy("trivial", seed=seed),
                                 image_shape=subset.image_shape, num_classes=subset.num_classes)  # fmt: skip
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    options = {"feedback": model.eval(), "feedback_scale": scale}
    return SyntheticBank.generate(synthaug.load(run / "generator"), path=run / f"bank-feedback-{scale:g}", per_class=per_class,
                                  seed=1, sample_options=options)  # fmt: skip


def arms(banks: dict[str, dict], best: str, finetune_steps: int) -> list[Arm]:
    out = [Arm("real"), Arm("real + classic", classic=True), Arm(f"real + {best} 0.5", banks[best], ratio=0.5)]
    out += [Arm(f"real + classic + {name} 0.5", per_seed, ratio=0.5, classic=True, against="real + classic")
            for name, per_seed in banks.items() if name != best]  # fmt: skip
    return out + technique_arms(best, banks[best], ratio=0.5, finetune_steps=finetune_steps)


def strong_arms(banks: dict[str, dict], best: str, bases: list[str]) -> list[Arm]:
    """The real-only grid and, on each base policy, the first family's samples appended, mixed and cut in."""
    out = baseline_arms()
    names = {arm.name for arm in out}
    for base in bases:
        out += [arm for arm in synthetic_arms(best, banks[best], policy_arm(base)) if arm.name not in names]
        if f"{best} feedback" in banks:
            out += synthetic_arms(f"{best} feedback", banks[f"{best} feedback"], policy_arm(base), controls=False)
    return out


def parse_study_arguments(parser: argparse.ArgumentParser, out: str) -> tuple[argparse.Namespace, dict, tuple[int, int]]:
    """Adds the options both studies share, parses, sets the thread count; returns the arguments, the generator
    step counts (``FAMILY_STEPS`` updated by ``--steps``, keys ``family`` or ``family@size``) and ``--part`` as (k, n)."""
    parser.add_argument("--bank-per-class", type=int, default=1000)
    parser.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS), choices=CLASSIFIERS)
    parser.add_argument("--classifier-steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--stage", choices=["generators", "all"], default="all", help="generators: train and sample only")
    parser.add_argument("--part", default="1/1", help="K/N: this process does the K-th of N shares of the generators")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=out)
    parser.add_argument("--cache", default="runs/downstream-cache")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = {**FAMILY_STEPS, **{key: int(value) for key, value in (s.split("=") for s in args.steps)}}
    k, n = (int(x) for x in args.part.split("/"))
    if not 1 <= k <= n:
        parser.error(f"--part {args.part}: K must be between 1 and N")
    return args, steps, (k, n)


def select_arms(arms: list[Arm], names: list[str], flag: str, parser: argparse.ArgumentParser) -> set[str]:
    """The names of ``arms`` to run for ``names`` given on the command line (``flag``), with every arm
    they are compared with (``against``, followed to its end), so that each chosen arm has its
    comparison. An unknown name is a parser error that lists the study's arms."""
    by_name = {arm.name: arm for arm in arms}
    unknown = set(names) - set(by_name) - {"real"}  # downstream always adds real only
    if unknown:
        parser.error(f"{flag}: unknown {sorted(unknown)}; the arms are {list(by_name)}")
    chosen: set[str] = set()
    for name in names:
        while name is not None and name not in chosen:
            chosen.add(name)
            name = by_name[name].against if name in by_name else None
    return chosen


def save_report(train: LabeledImages, test: LabeledImages, settings: dict, runs: list[dict], out: Path) -> DownstreamReport:
    """Writes the study's report (Markdown, JSON, plot) under ``out``, prints its table and returns it."""
    report = DownstreamReport(list(train.class_names), len(test), settings, runs)
    report.save(out)
    print()
    print(report.to_markdown())
    print(f"written: {out / 'downstream.md'}, {out / 'downstream.json'}, {out / 'downstream.png'}")
    return report


def _interval(delta: tuple[float, float, float]) -> str:
    return f"{100 * delta[0]:+.2f} [{100 * delta[1]:+.2f}, {100 * delta[2]:+.2f}]"


def controls_table(report: DownstreamReport, best: str, baselines: set[str] | None = None) -> str:
    """Markdown: each technique that has a control (the same technique with copies of the real images
    in place of the synthetic ones) minus that control, paired by seed; and, given the names of the
    real-only ``baselines``, each synthetic arm minus the strongest of them (highest mean accuracy at
    that size and classifier). Empty when no pair ran."""
    present = {(r["size"], r["classifier"], r["arm"]) for r in report.summary}
    lines = []
    for row in report.summary:
        arm = row["arm"]
        technique = arm.rsplit(" ", 1)[-1]
        if f" + {best} " not in arm or technique not in ("teacher", "mixup", "cutmix"):
            continue
        control = f"{arm[: arm.index(f' + {best} ')]} + real copies {technique}"  # "... + ddpm feedback mixup" too
        if (row["size"], row["classifier"], control) in present:
            delta = report.compare(arm, control, size=row["size"], classifier=row["classifier"])["accuracy"]
            lines.append(f"| {row['size']} | {row['classifier']} | {arm} | {control} | {_interval(delta)} |")
    strongest = []
    for size, classifier in sorted({(r["size"], r["classifier"]) for r in report.summary}):
        rows = [r for r in report.summary if (r["size"], r["classifier"]) == (size, classifier)]
        candidates = [r for r in rows if baselines and r["arm"] in baselines]
        if not candidates:
            continue
        top = max(candidates, key=lambda r: r["accuracy"][0])
        for row in rows:
            if f" {best}" in row["arm"]:
                delta = report.compare(row["arm"], top["arm"], size=size, classifier=classifier)["accuracy"]
                strongest.append(f"| {size} | {classifier} | {row['arm']} | {top['arm']} | {_interval(delta)} |")
    out = ""
    if lines:
        out += "\n".join(["Techniques against their controls: accuracy difference (points), paired by seed, [95% interval]", "",
                          "| real / class | classifier | arm | control | Δ [95% CI] |", "|---:|---|---|---|---:|", *lines]) + "\n"
    if strongest:
        out += "\n" + "\n".join(["Synthetic arms against the strongest real-only baseline (highest mean accuracy), paired by seed",
                                  "", "| real / class | classifier | arm | strongest baseline | Δ [95% CI] |",
                                  "|---:|---|---|---|---:|", *strongest]) + "\n"  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 60], help="real images per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--families", nargs="+", default=["ddpm", "vae"], help="the first gets every technique")
    parser.add_argument("--steps", nargs="+", default=["ddpm@10=1500", "vae@10=1500"], metavar="FAMILY[@SIZE]=N",
                        help=f"generator steps, for every size or one (default {FAMILY_STEPS}, and %(default)s)")
    parser.add_argument("--full-classifiers", nargs="+", default=["cnn"], choices=CLASSIFIERS,
                        help="classifiers that run every arm at --full-sizes and the core arms (real, classic, classic + "
                             "the first family, its teacher labels and their control, two stages) plus the other families "
                             "at the other sizes; the rest run the core arms at --partial-sizes")
    parser.add_argument("--full-sizes", nargs="+", type=int, default=[60])
    parser.add_argument("--partial-sizes", nargs="+", type=int, default=[60])
    parser.add_argument("--partial-arms", nargs="+", default=None, metavar="ARM",
                        help="the arms of the partial runs, by name, with the arms they are compared with (default: the core arms)")
    parser.add_argument("--bases", nargs="+", default=None, choices=list(POLICY_NAMES),
                        help="run against the strong baselines: the real-only grid, and the first family's samples "
                             "appended / mixup / CutMix on each of these base policies (instead of the turn-2 arms)")
    parser.add_argument("--generator-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="hyper-parameters of the first family (values read as JSON), e.g. parameterization=vp: "
                             "the ddpm of the studies before EDM became its default")
    parser.add_argument("--feedback", type=float, default=None, metavar="SCALE",
                        help="with --bases: also a bank of the first family sampled with classifier feedback at this scale")
    args, steps, (k, n) = parse_study_arguments(parser, out="runs/fashion-mnist-low-data")

    try:
        generator_options = parse_options(args.generator_options, "--generator-options")
    except ValueError as error:
        parser.error(str(error))
    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    out = Path(args.out)
    jobs = [(size, seed, family) for size in args.sizes for seed in args.seeds for family in args.families]
    banks: dict[str, dict] = {family: {} for family in args.families}
    for index, (size, seed, family) in enumerate(jobs):
        run = out / "generators" / f"size-{size}" / f"seed-{seed}" / family
        if args.stage == "generators" and index % n != k - 1:
            continue
        family_steps = steps.get(f"{family}@{size}", steps[family])
        options = generator_options if family == args.families[0] else {}
        banks[family][(size, seed)] = trained_bank(family, train.subset(size, seed=seed), run, family_steps, args.bank_per_class,
                                                   **options)  # fmt: skip
        if args.feedback and family == args.families[0]:
            banks.setdefault(f"{family} feedback", {})[(size, seed)] = feedback_bank(
                train.subset(size, seed=seed), run, args.bank_per_class, args.feedback, seed, args.classifier_steps)
    if args.stage == "generators":
        return

    best = args.families[0]
    if args.bases:
        every = strong_arms(banks, best, args.bases)
        core = {arm.name for arm in every}
    else:
        every = arms(banks, best, finetune_steps=max(1, args.classifier_steps // 6))
        core = {"real", "real + classic", f"real + classic + {best}", f"real + classic + {best} teacher",
                "real + classic + real copies teacher", f"real + classic + {best} then real"}  # fmt: skip
    if args.partial_arms:
        core = select_arms(every, args.partial_arms, "--partial-arms", parser)
    families = {f"real + classic + {family} 0.5" for family in args.families[1:]}
    runs = []
    for classifier in args.classifiers:
        for size in args.sizes:
            if classifier in args.full_classifiers and size in args.full_sizes:
                chosen = every
            elif classifier in args.full_classifiers or size in args.partial_sizes:
                chosen = [arm for arm in every if arm.name in core | (families if classifier in args.full_classifiers else set())]
            else:
                continue
            runs += downstream(train, test, arms=chosen, sizes=[size], seeds=args.seeds, classifiers=(classifier,),
                               steps=args.classifier_steps, cache_dir=args.cache).runs  # fmt: skip
    report = save_report(train, test, {"seeds": args.seeds, "steps": args.classifier_steps, "batch_size": 64,
                                       "subset_seed": None, "generator_options": generator_options}, runs, out)  # fmt: skip
    controls = controls_table(report, best, {arm.name for arm in every if arm.source is None or arm.source is real_copies})
    if controls:
        print("\n" + controls)
        with open(out / "downstream.md", "a") as md:
            md.write("\n" + controls)


if __name__ == "__main__":
    main()
