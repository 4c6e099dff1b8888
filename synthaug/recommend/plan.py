"""The race's plan: validation splits of the user's images, the rungs of successive halving, and what fits the budget.

The plan is made once, from rates measured on this machine (seconds per classifier step and per
generator step, per sampled image), and stored with the study, so that a resumed or a second
process runs exactly the same rungs and finds its runs in the cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from synthaug.data.labeled import LabeledImages

#: generator steps when the budget allows (the low-data study's, at 60 images per class)
FAMILY_STEPS = {"vae": 2000, "ddpm": 3000, "gan": 6000, "ar": 3000}
#: the fewest steps a plan gives a generator, and a classifier at the first rung
MIN_GENERATOR_STEPS = 100
MIN_FIRST_RUNG_STEPS = 20
#: share of the budget the generators may take when their steps are not given
GENERATOR_SHARE = 0.5
#: the first rungs train at least this share of the full length (``max_classifier_steps``) when the budget
#: allows, else of the last rung's steps. Strong augmentation
#: (TrivialAugment, RandAugment) and mixing learn slower than flips and shifts, so at a ninth of the
#: final length they rank below recipes that beat them at the full length, and a short first rung
#: prunes them for the wrong reason. Rungs with the same steps as the rung before reuse its runs
#: (the same units, from the cache) and only add units: their resource is more folds, not more steps.
MIN_RUNG_SHARE = 1 / 3


def validation_splits(data: LabeledImages, splits: int, *, seed: int = 0) -> list[tuple[LabeledImages, LabeledImages]]:
    """``splits`` stratified folds: ``[(train_i, validation_i)]``, every image in exactly one validation part.

    Each class's images are shuffled with ``seed`` and dealt to the folds in turn, so every fold holds
    every class when each class has at least ``splits`` images (else a clear error).
    """
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 2:
        raise ValueError(f"splits must be an integer >= 2 (validation folds), got {splits!r}; pass validation= to "
                         "score on a held-out set of your own")  # fmt: skip
    counts = data.class_counts()
    fewest = min(range(len(counts)), key=counts.__getitem__)
    if counts[fewest] < splits:
        fix = f"use splits={counts[fewest]}" if counts[fewest] >= 2 else "add images of that class"
        raise ValueError(f"class {data.class_names[fewest]!r} has {counts[fewest]} image(s), so {splits} validation folds "
                         f"would leave a fold without it: {fix}, or pass validation= (a held-out set of your own)")  # fmt: skip
    rng = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(data), dtype=torch.long)
    for c in range(data.num_classes):
        members = torch.nonzero(data.labels == c).flatten()
        fold[members[torch.randperm(len(members), generator=rng)]] = torch.arange(len(members)) % splits
    return [(data.select(torch.nonzero(fold != i).flatten()), data.select(torch.nonzero(fold == i).flatten()))
            for i in range(splits)]  # fmt: skip


def check_validation(train: LabeledImages, validation: LabeledImages) -> None:
    """The user's own validation set must have the training data's classes and image size, and every class."""
    if tuple(validation.class_names) != tuple(train.class_names):
        raise ValueError(f"the validation set's classes {list(validation.class_names)} differ from the data's "
                         f"{list(train.class_names)}")  # fmt: skip
    if tuple(validation.image_shape) != tuple(train.image_shape):
        raise ValueError(f"the validation images are {validation.image_shape} (C, H, W), the data's {train.image_shape}")
    empty = [name for name, n in zip(validation.class_names, validation.class_counts()) if n == 0]
    if empty:
        raise ValueError(f"the validation set has no image of class {empty[0]!r}: every class needs at least one")


@dataclass
class Rates:
    """Seconds measured on this machine: a classifier run's fixed cost and its cost per step, a generator's
    per step (and fixed, per training), and one sampled image."""

    classifier_overhead: float
    classifier_step: float
    generator_overhead: float = 0.0
    generator_step: float = 0.0
    sample: float = 0.0


@dataclass
class Plan:
    """What the race runs: the candidates (by name), the units ``(split, seed)`` runs are paired on, each
    rung's classifier steps and number of units, the generators' steps and bank size, and its estimate."""

    candidates: list[str]
    synthetic: list[str]
    units: list[tuple[int, int]]
    rung_steps: list[int]
    rung_units: list[int]
    eta: int
    families: list[str]
    generator_steps: int
    bank_per_class: int
    rates: Rates
    estimate: float = 0.0
    data: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    #: seconds the race may take after calibration (0: the steps were given, and stay)
    budget: float = 0.0
    max_steps: int = 3000
    #: banks sampled from each generator (one per guidance scale raced)
    banks_per_generator: int = 1

    @property
    def rungs(self) -> int:
        return len(self.rung_steps)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["units"] = [list(unit) for unit in self.units]
        return out

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Plan:
        value = dict(value)
        value["rates"] = Rates(**value["rates"])
        value["units"] = [tuple(unit) for unit in value["units"]]
        return cls(**value)

    def generator_seconds(self, classes: int) -> float:
        """One generator trained and sampled to its banks."""
        r = self.rates
        sampled = self.banks_per_generator * self.bank_per_class * classes * r.sample
        return r.generator_overhead + self.generator_steps * r.generator_step + sampled

    def run_seconds(self, rung: int) -> float:
        """One classifier run at ``rung``."""
        return self.rates.classifier_overhead + self.rung_steps[rung] * self.rates.classifier_step


def new_units(plan: Plan, rung: int) -> int:
    """The units ``rung`` trains anew: a rung with the previous rung's steps finds that rung's units in the cache."""
    if rung and plan.rung_steps[rung] == plan.rung_steps[rung - 1]:
        return plan.rung_units[rung] - plan.rung_units[rung - 1]
    return plan.rung_units[rung]


def rescale(plan: Plan, rung: int, survivors: int, step_seconds: float, remaining: float, generators_left: int,
            classes: int) -> tuple[list[int], float]:  # fmt: skip
    """The rungs after ``rung`` stretched (or shrunk) to fill ``remaining`` seconds, at the survivors' measured
    ``step_seconds`` (their slowest): ``(every rung's steps, the estimated seconds left)``.

    The first plan prices every run at the costliest candidate's rate; once a rung has run, the
    survivors' own rates are known, so the last rungs get the steps the budget really allows (at most
    ``max_steps`` at the last rung, at least :data:`MIN_FIRST_RUNG_STEPS`), keeping the ``eta`` ratios.
    A rung before the last planned with the steps of the rung just run keeps them, so that it reuses that
    rung's runs.
    """
    later = range(rung + 1, plan.rungs)
    sizes, n = {}, survivors
    for r in later:
        sizes[r] = n
        n = max(2, math.ceil(n / plan.eta)) + 1  # the best baseline may join the best
    # the last rung always stretches: it decides, and a plan whose rungs all sit at the floor (the first rates'
    # estimate) would otherwise end with budget unspent
    tied = {r for r in later if r < plan.rungs - 1 and all(plan.rung_steps[q] == plan.rung_steps[rung] for q in range(rung, r + 1))}
    overhead = sum(sizes[r] * new_units(plan, r) * plan.rates.classifier_overhead for r in later)
    kept = sum(sizes[r] * new_units(plan, r) * plan.rung_steps[r] * step_seconds for r in tied)
    per_unit_scale = sum(sizes[r] * plan.rung_units[r] * plan.rung_steps[r] * step_seconds for r in later if r not in tied)
    available = remaining - generators_left * plan.generator_seconds(classes) - overhead - kept
    scale = min(plan.max_steps / plan.rung_steps[-1], max(available, 0.0) / max(per_unit_scale, 1e-12))
    steps = list(plan.rung_steps)
    for r in later:
        if r not in tied:
            steps[r] = max(min(MIN_FIRST_RUNG_STEPS, plan.rung_steps[r]), round(scale * plan.rung_steps[r]))
    cost = overhead + generators_left * plan.generator_seconds(classes) + kept
    cost += sum(sizes[r] * plan.rung_units[r] * steps[r] * step_seconds for r in later if r not in tied)
    return steps, cost


def rung_sizes(candidates: int, eta: int) -> list[int]:
    """How many candidates each rung races: all, then a ``1/eta`` share (at least 2) until 2 are left."""
    sizes = [candidates]
    while sizes[-1] > 2:
        sizes.append(max(2, math.ceil(sizes[-1] / eta)))
    return sizes


def make_plan(
    candidates: Sequence[str],
    synthetic: Sequence[str],
    units: Sequence[tuple[int, int]],
    *,
    families: Sequence[str],
    classes: int,
    rates: Rates,
    budget: float,
    eta: int = 3,
    classifier_steps: int | None = None,
    max_classifier_steps: int = 3000,
    generator_steps: int | None = None,
    bank_per_class: int = 1000,
    min_rung_share: float = MIN_RUNG_SHARE,
    banks_per_generator: int = 1,
) -> Plan:
    """The largest race that fits ``budget`` seconds (or the given step counts, checked against it).

    Rung ``r`` of ``R`` trains ``steps / eta ** (R - 1 - r)`` steps, but at least ``min_rung_share``
    (:data:`MIN_RUNG_SHARE`) of ``max_classifier_steps`` when the budget allows, else of ``steps``, on the
    first units (one at the first rung, all at the last); each rung keeps the best ``1/eta`` of its
    candidates and the best baseline.
    """
    if not 0 < min_rung_share <= 1:
        raise ValueError(f"min_rung_share must be in (0, 1] (a share of the full length), got {min_rung_share}")
    sizes = rung_sizes(len(candidates), eta)
    count = len(sizes)
    rung_units = [max(1, math.ceil(len(units) * (r + 1) / count)) for r in range(count)]
    splits_used = len({split for split, _ in units})
    generators = splits_used * len(families) if synthetic else 0

    def plan(final_steps: int, gen_steps: int, floor: int | None = None) -> Plan:
        floor = min(final_steps, round(min_rung_share * final_steps) if floor is None else floor)
        steps = [max(1, round(final_steps / eta ** (count - 1 - r)), floor) for r in range(count)]
        made = Plan(list(candidates), list(synthetic), list(units), steps, rung_units, eta, list(families), gen_steps,
                    bank_per_class, rates, banks_per_generator=banks_per_generator)  # fmt: skip
        runs = sum((n + 1 if r else n) * new_units(made, r) * made.run_seconds(r) for r, n in enumerate(sizes))
        made.estimate = runs + generators * made.generator_seconds(classes)
        return made

    smallest_final = min(MIN_FIRST_RUNG_STEPS * eta ** (count - 1), max_classifier_steps)
    gen_default = max(FAMILY_STEPS.get(f, 3000) for f in families) if families else 0
    gen_min = generator_steps if generator_steps is not None else min(MIN_GENERATOR_STEPS, gen_default)
    cheapest = plan(classifier_steps or smallest_final, gen_min if generators else 0)
    if cheapest.estimate > budget:
        what = f"{len(candidates)} candidates, {len(units)} validation runs each at the last rung"
        if generators:
            what += f", {generators} generator(s) of {cheapest.generator_steps} steps"
        generating = generators * cheapest.generator_seconds(classes)
        raise ValueError(f"a budget of {budget / 60:.2f} min is too small for this data: the smallest race ({what}, "
                         f"{cheapest.rung_steps[-1]} classifier steps at the last rung) needs about "
                         f"{math.ceil(cheapest.estimate / 6) / 10:.1f} min (generators and banks {generating / 60:.1f}, "
                         f"classifiers {(cheapest.estimate - generating) / 60:.1f}); give a budget of at least that")  # fmt: skip
    gen_steps = 0
    if generators:
        if generator_steps is not None:
            gen_steps = generator_steps
        else:
            r = rates
            left = (GENERATOR_SHARE * budget / generators - r.generator_overhead
                    - banks_per_generator * bank_per_class * classes * r.sample)  # fmt: skip
            gen_steps = int(min(gen_default, max(gen_min, left / max(r.generator_step, 1e-9))))
    if classifier_steps is not None:
        return plan(classifier_steps, gen_steps)
    # the classifiers' cost is linear in the final rung's steps: take the most that fits what is left
    # (measured at two lengths, so that the shares' rounding and the reused runs price alike)
    unit = eta ** (count - 1) * 1000
    one, two = plan(unit, gen_steps), plan(2 * unit, gen_steps)
    slope = (two.estimate - one.estimate) / unit
    final = int(min(max_classifier_steps, (budget - (one.estimate - slope * unit)) / max(slope, 1e-12)))
    made = plan(max(final, smallest_final), gen_steps)
    floor = round(min_rung_share * max_classifier_steps)
    if made.rung_steps[0] < floor and plan(floor, gen_steps, floor).estimate <= budget:
        # The first rungs decide which recipes survive: when the budget allows, they train a share of the full
        # length (the yardstick's), not of this plan's last rung, which the first, pessimistic, rates shorten
        # (the last rung is stretched after the first rung, at the survivors' measured speed).
        low, high = floor, max_classifier_steps
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if plan(middle, gen_steps, floor).estimate <= budget else (low, middle - 1)
        made = plan(low, gen_steps, floor)
    made.budget, made.max_steps = budget, max_classifier_steps
    return made
