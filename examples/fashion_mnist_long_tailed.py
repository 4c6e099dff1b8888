"""The long-tailed Fashion-MNIST study: synthetic samples for the rare classes, against the best cheap baselines.

    python examples/fashion_mnist_long_tailed.py                      # everything missing, then the table and plot
    python examples/fashion_mnist_long_tailed.py --stage generators --part 1/2 --threads 1   # half the generators

Each seed draws its own long-tailed subset of the 60,000 training images: an exponential profile
from ``--head`` images of the most frequent class down to ``head / --imbalance`` of the rarest
(600 ... 6 by default: 1,486 images), with the order of the classes drawn from the seed. On exactly
that subset (all classes, so the tail can borrow from the head) each generator family trains for a
fixed number of steps and draws a bank of ``--bank-per-class`` samples per class. Then
``synthaug.evaluation.downstream`` trains each yardstick classifier on every arm and tests it on the
full, balanced 10,000-image test set, reporting accuracy (= balanced accuracy here), macro-F1 and
the accuracy of the 3 rarest classes, paired by seed:

* baselines (each with classic augmentation): plain, class-balanced oversampling, deferred
  re-weighting (DRW), logit adjustment, mixup, mixup + DRW;
* the same with an automatic policy (``--policies``, TrivialAugment by default) alone, under logit
  adjustment and under mixup + DRW;
* synthaug: each family's samples top every class up to the head class (``mode="balance"``), on
  classic augmentation and on mixup; appended in the real proportions under logit adjustment; and,
  for the first family, balance with teacher labels and with two-sided filtering, and its samples
  appended under the policy's logit adjustment and mixup + DRW arms.

ddpm and vae train on every seed's subset; gan and ar, slower to train on two CPU cores, on the first
three (``--all-seed-families``, ``--few-seeds``); their rows pair with the baselines on those seeds.
The CNN runs every arm; the ResNet runs plain training, classic augmentation, logit adjustment, mixup
and mixup + DRW, and the first family's arms on them.

``--arms`` runs a chosen few (each with the arms it is compared with), e.g. the strongest baselines
and the first family on them when CPU time is short.

Everything is cached (generators, banks, one JSON per run); a rerun computes only what is missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fashion_mnist_low_data import FAMILY_STEPS, parse_study_arguments, save_report, select_arms, trained_bank

from synthaug.classifier import CLASSIFIERS
from synthaug.data import LabeledImages, load_fashion_mnist
from synthaug.evaluation import downstream, long_tail_arms, long_tail_baselines, rarest

#: the baselines a second classifier runs besides the first family's arms
PARTIAL = {"real", "real + classic", "classic + logit adjustment", "classic + mixup", "classic + mixup + DRW"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", type=int, default=600, help="images of the most frequent class")
    parser.add_argument("--imbalance", type=float, default=100.0, help="head / tail")
    parser.add_argument("--profile", default="exponential", choices=("exponential", "step"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--families", nargs="+", default=["ddpm", "vae", "gan", "ar"], help="the first gets the techniques")
    parser.add_argument("--all-seed-families", nargs="+", default=["ddpm", "vae"], help="families trained for every seed")
    parser.add_argument("--few-seeds", nargs="+", type=int, default=[0, 1, 2], help="the other families' seeds")
    parser.add_argument("--steps", nargs="+", default=[], metavar="FAMILY=N", help=f"generator steps (default {FAMILY_STEPS})")
    parser.add_argument("--policies", nargs="*", default=["TA"], choices=["TA", "RA"],
                        help="automatic augmentation policies added to the strongest loss-side baselines, with the first "
                             "family's samples on them")
    parser.add_argument("--full-classifiers", nargs="+", default=["cnn"], choices=CLASSIFIERS,
                        help="classifiers that run every arm; the others run the baselines and the first family's arms")
    parser.add_argument("--arms", nargs="+", default=None, metavar="ARM",
                        help="run only these arms, by name, with the arms they are compared with (default: all)")
    args, steps, (k, n) = parse_study_arguments(parser, out="runs/fashion-mnist-long-tailed")

    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")

    def subset(data: LabeledImages, size: int, seed: int) -> LabeledImages:
        return data.subset_long_tailed(size, args.imbalance, profile=args.profile, seed=seed)

    out = Path(args.out)

    def seeds_of(family: str) -> list[int]:
        return args.seeds if family in args.all_seed_families else [s for s in args.seeds if s in args.few_seeds]

    jobs = [(seed, family) for seed in args.seeds for family in args.families if seed in seeds_of(family)]
    banks: dict[str, dict] = {family: {} for family in args.families}
    first = args.families[0]
    every = long_tail_baselines(policies=args.policies) + long_tail_arms(banks, techniques=[first], policies=args.policies)
    selected = select_arms(every, args.arms, "--arms", parser) if args.arms else None  # checked before anything trains
    for index, (seed, family) in enumerate(jobs):
        if args.stage == "generators" and index % n != k - 1:
            continue
        run = out / "generators" / f"seed-{seed}" / family
        banks[family][(args.head, seed)] = trained_bank(family, subset(train, args.head, seed), run, steps[family],
                                                        args.bank_per_class)  # fmt: skip
    if args.stage == "generators":
        return

    common = {"sizes": [args.head], "steps": args.classifier_steps, "subsets": subset, "groups": {"rarest 3": rarest(3)},
              "cache_dir": args.cache}  # fmt: skip
    runs: dict[tuple, dict] = {}
    for classifier in args.classifiers:
        chosen = args.families if classifier in args.full_classifiers else [first]
        for seeds in dict.fromkeys(tuple(seeds_of(family)) for family in chosen):  # families trained for the same seeds
            families = [f for f in chosen if tuple(seeds_of(f)) == seeds]
            arms = long_tail_baselines(policies=args.policies) + long_tail_arms(
                {f: banks[f] for f in families}, techniques=[first] if classifier in args.full_classifiers else [],
                policies=args.policies if first in families else ())
            if classifier not in args.full_classifiers:  # the strongest baselines and the first family on them
                partial = PARTIAL | {a.name for a in long_tail_baselines(policies=args.policies)[7:]}
                arms = [a for a in arms if a.name in partial or first in a.name]
            if selected is not None:
                arms = [a for a in arms if a.name in selected]
            for run in downstream(train, test, arms=arms, seeds=list(seeds), classifiers=(classifier,), **common).runs:
                runs[(run["classifier"], run["arm"], run["seed"])] = run  # baselines run once, cached, whatever the call
    runs = list(runs.values())
    settings = {"seeds": args.seeds, "steps": args.classifier_steps, "batch_size": 64, "subset_seed": None,
                "long_tailed": {"head": args.head, "imbalance": args.imbalance, "profile": args.profile}}  # fmt: skip
    save_report(train, test, settings, runs, out)


if __name__ == "__main__":
    main()
