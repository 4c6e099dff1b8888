"""``recommend``: does synthetic data help a classifier on these images, and with which recipe?"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn

from synthaug.bank import SyntheticBank
from synthaug.classifier import DEFAULT_STEPS
from synthaug.data.labeled import LabeledImages
from synthaug.evaluation.arms import Arm, baseline_arms, policy_arm, real_copies, synthetic_arms
from synthaug.evaluation.runner import Recipe as TrainingRecipe
from synthaug.evaluation.runner import _Cache, _Context, _HeldOut, _one, _run, _sha
from synthaug.generators import GENERATORS
from synthaug.generators.base import sample_uint8
from synthaug.io import load
from synthaug.recipe import ARM_DEFAULTS, recipe_of
from synthaug.recommend.plan import MIN_RUNG_SHARE, Plan, Rates, check_validation, make_plan, rescale, validation_splits
from synthaug.recommend.race import open_storage, quiet_optuna, run_rung, rung_results, select, trial_candidate
from synthaug.recommend.report import RecommendReport, Rule, summarise, verdict
from synthaug.seeding import derive_seed, torch_generator
from synthaug.training import fit

logger = logging.getLogger(__name__)

#: steps of the calibration runs that measure this machine's speed (the first absorbs one-time costs)
CALIBRATION_STEPS = (2, 6, 14)
#: a generator's calibration fits continue one another up to these steps, so their 28 steps count towards training
GENERATOR_CALIBRATION_STEPS = (2, 10, 30)


@dataclass
class Progress:
    """What a progress display shows: estimated seconds done and in all, the leader so far, the stage."""

    done: float
    total: float
    leader: str | None
    stage: str


class GeneratorBanks:
    """An arm source: ``family`` trained on the real subset it is given (its training part only) and its bank.

    Cached as ``root/FAMILY-SUBSET/`` with ``generator/``, ``checkpoints/last.ckpt`` and ``bank/`` (the
    layout of the low-data study's ``trained_bank``); an interrupted training resumes from ``last.ckpt``.
    ``sample_options`` (e.g. ``{"guidance": 2.0}`` for a ddpm) make a bank of their own, ``bank-KEY-VALUE/``,
    from the same generator: sources that differ only in how they sample share one training. ``label``
    names the source in candidates (default: the family, and the options as ``g2`` for guidance 2).
    """

    def __init__(self, family: str, root: Path, *, seed: int, options: Mapping[str, Any], per_class: int,
                 sample_options: Mapping[str, Any] | None = None, label: str | None = None) -> None:  # fmt: skip
        self.family, self.root, self.seed, self.options, self.per_class = family, root, seed, dict(options), per_class
        self.sample_options = dict(sample_options or {})
        self.label = label or " ".join([family, *(_option_label(k, v) for k, v in sorted(self.sample_options.items()))])
        self.steps = 0
        self.on_made: Callable[[], None] | None = None
        self.fresh = 0  # generators trained or banks sampled by this object (their time is not a classifier's)
        self._made: dict[str, SyntheticBank] = {}

    def run_dir(self, subset: LabeledImages) -> Path:
        return self.root / f"{self.family}-{_sha(subset)}"

    def bank_dir(self, subset: LabeledImages) -> Path:
        """Where the bank of ``subset``'s generator with this source's sample options lies."""
        suffix = "".join(f"-{key}-{value}" for key, value in sorted(self.sample_options.items()))
        return self.run_dir(subset) / f"bank{suffix}"

    def train(self, subset: LabeledImages, steps: int) -> None:
        """Trains (or resumes) the generator to ``steps``."""
        run = self.run_dir(subset)
        last = run / "checkpoints" / "last.ckpt"
        fit(subset, self.family, out=run, seed=self.seed, max_steps=steps, ckpt_path="last" if last.is_file() else None,
            enable_progress_bar=False, logger=False, **self.options)  # fmt: skip

    def __call__(self, subset: LabeledImages) -> SyntheticBank:
        key = _sha(subset)
        if key not in self._made:
            run = self.run_dir(subset)
            marker = run / "recommend.json"
            done = marker.is_file() and json.loads(marker.read_text()).get("steps") == self.steps
            if not (done and (run / "generator" / "config.json").is_file()):
                logger.info("training %s on %d images for %d steps", self.family, len(subset), self.steps)
                self.fresh += 1
                self.train(subset, self.steps)
                marker.write_text(json.dumps({"steps": self.steps}))
            bank = self.bank_dir(subset)
            fresh = not (bank / "manifest.json").is_file()
            self.fresh += fresh
            # one seed for every sampling option: banks that differ only in guidance start from the same noise
            self._made[key] = SyntheticBank.generate(load(run / "generator"), path=bank, per_class=self.per_class,
                                                     seed=derive_seed(self.seed, "bank"), sample_options=self.sample_options)  # fmt: skip
            if fresh and self.on_made is not None:
                self.on_made()
        return self._made[key]


def _option_label(key: str, value: Any) -> str:
    return f"g{value:g}" if key == "guidance" else f"{key}={value}"


def default_candidates(banks: Mapping[str, GeneratorBanks], bases: Sequence[str], *, lightning_module: bool) -> list[Arm]:
    """The real-only grid (:func:`~synthaug.evaluation.baseline_arms`) and, on each of ``bases``, every source's
    samples appended and mixed in (mixup, CutMix), named by the source's label (a family, or a family and its
    guidance scale). A LightningModule trains itself, so only what reaches it through the dataset is raced
    (flips and shifts, appended samples)."""
    arms = baseline_arms()
    for base in bases:
        for label, source in banks.items():
            arms += synthetic_arms(label, source, policy_arm(base), controls=False)
    if lightning_module:
        arms = [arm for arm in arms if arm.policy is None and arm.mix_alpha is None and not arm.label_smoothing]
    return arms


def _source_kind(arm: Arm) -> str | None:
    if arm.source is None:
        return None
    if arm.source is real_copies:
        return "real"
    if isinstance(arm.source, GeneratorBanks):
        return "bank"
    raise ValueError(f"candidate {arm.name!r}: a recipe takes samples from the generators recommend trains or from "
                     "real copies; give source=None or synthaug.evaluation.real_copies")  # fmt: skip


def _check_candidates(arms: Sequence[Arm]) -> None:
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"recommend needs at least 2 candidates with distinct names, got {names}")
    if not any(_source_kind(arm) != "bank" for arm in arms):
        raise ValueError("recommend needs at least one real-only candidate (a baseline) to measure gains against")
    _check_sources([(arm.name, arm.source) for arm in arms if isinstance(arm.source, GeneratorBanks)])
    default = Arm("default").options()
    for arm in arms:
        extra = {k: v for k, v in arm.options().items() if k not in ARM_DEFAULTS and v != default.get(k)}
        if extra:
            raise ValueError(f"candidate {arm.name!r} sets {sorted(extra)}, which a recipe cannot hold; the options a "
                             f"recipe holds are {sorted(ARM_DEFAULTS)}")  # fmt: skip


def _check_sources(sources: Sequence[tuple[str, GeneratorBanks]]) -> None:
    """Distinct ``GeneratorBanks`` (each with the name of a candidate that uses it) must not share a label
    (the race keys its sources by label) nor a folder in which they would train or sample differently."""
    by_label: dict[str, tuple[str, GeneratorBanks]] = {}
    by_run: dict[tuple[Path, str], tuple[str, GeneratorBanks]] = {}
    by_bank: dict[tuple[Path, str, str], tuple[str, GeneratorBanks]] = {}
    for name, source in sources:
        other_arm, other = by_label.setdefault(source.label, (name, source))
        if other is not source:
            raise ValueError(f"candidates {other_arm!r} and {name!r} take samples from two GeneratorBanks labelled "
                             f"{source.label!r}: give each its own label= (or let both use one GeneratorBanks)")  # fmt: skip
        run = (Path(source.root), source.family)
        other_arm, other = by_run.setdefault(run, (name, source))
        if (other.seed, other.options) != (source.seed, source.options):
            raise ValueError(f"candidates {other_arm!r} and {name!r} would train {source.family} generators with "
                             f"different seeds or options into one folder ({source.root}): give each GeneratorBanks "
                             "its own root")  # fmt: skip
        other_arm, other = by_bank.setdefault((*run, repr(sorted(source.sample_options.items()))), (name, source))
        if other.per_class != source.per_class:
            raise ValueError(f"candidates {other_arm!r} and {name!r} would sample banks of {other.per_class} and "
                             f"{source.per_class} per class into one folder: give them the same per_class")  # fmt: skip


def _check_guidance(guidance: Sequence[float] | None, families: Sequence[str], candidates: Sequence[Arm] | None) -> list[float] | None:
    """The guidance scales to race, checked: distinct numbers in the ddpm's range, for families that guide."""
    if guidance is None:
        return None
    if candidates is not None:
        raise ValueError("guidance= shapes the default candidates; with candidates=, give each GeneratorBanks its own "
                         "sample_options={'guidance': ...} instead")  # fmt: skip
    from synthaug.generators.ddpm import MAX_GUIDANCE

    if isinstance(guidance, (str, bytes)) or not isinstance(guidance, Sequence) or not guidance:
        raise ValueError(f"guidance must be a non-empty list of scales such as (0, 1, 2), got {guidance!r}")
    scales = []
    for value in guidance:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_GUIDANCE:
            raise ValueError(f"guidance scales lie in [0, {MAX_GUIDANCE:g}] (0: unconditional, 1: conditional, >1: "
                             f"stronger), got {value!r}")  # fmt: skip
        scales.append(float(value))
    if len(set(scales)) != len(scales):
        raise ValueError(f"guidance scales must differ, got {list(guidance)}")
    unguided = [f for f in families if "guidance" not in GENERATORS[f].config_class.options()]
    if unguided:
        raise ValueError(f"guidance= races classifier-free guidance scales, which family {unguided[0]!r} does not have: "
                         "race it in a separate call, or drop guidance=")  # fmt: skip
    if not families:
        raise ValueError("guidance= needs a generator family that guides (families=('ddpm',))")
    return scales


def _calibrate(
    arms: Sequence[Arm], banks: Mapping[str, GeneratorBanks], context: _Context, validation: LabeledImages,
    recipe: TrainingRecipe, need_generators: bool,
) -> Rates:  # fmt: skip
    """Seconds per classifier step (and per run) on the costliest baseline, per generator step, per sampled image."""
    heavy = max((a for a in arms if _source_kind(a) != "bank"), key=lambda a: (a.policy is not None) + (a.mix_alpha is not None))
    source = real_copies(context.subset) if heavy.source is not None else None
    _, first, second = CALIBRATION_STEPS  # the first run pays one-time costs (imports, first calls), and is not used
    times = []
    for steps in CALIBRATION_STEPS:
        started = time.perf_counter()
        _run(heavy, context, source, TrainingRecipe(**{**recipe.__dict__, "steps": steps}), validation)
        times.append(time.perf_counter() - started)
    step = max((times[2] - times[1]) / (second - first), times[2] / second / 10)
    rates = Rates(classifier_overhead=max(0.0, times[1] - first * step), classifier_step=step)
    if need_generators:
        g_warm, g_first, g_second = GENERATOR_CALIBRATION_STEPS
        for bank in {b.family: b for b in banks.values()}.values():  # the slowest family sets the rate (the plan gives all the same steps)
            timed = []
            for steps in GENERATOR_CALIBRATION_STEPS:
                started = time.perf_counter()
                bank.train(context.subset, steps)
                timed.append(time.perf_counter() - started)
            longer, shorter = g_second - g_first, g_first - g_warm  # steps trained by the third and the second fit
            g_step = max((timed[2] - timed[1]) / (longer - shorter), timed[2] / longer / 10)
            generator = load(bank.run_dir(context.subset) / "generator")
            labels = generator.check_labels(list(range(generator.num_classes))).cpu()
            started = time.perf_counter()
            sample_uint8(generator, labels, generator=torch_generator(0, "calibration"))
            sample = (time.perf_counter() - started) / len(labels)
            if g_step > rates.generator_step:
                rates.generator_step = g_step
                rates.generator_overhead = max(0.0, timed[1] - shorter * g_step)
            rates.sample = max(rates.sample, sample)
    return rates


def recommend(
    data: LabeledImages,
    *,
    budget_minutes: float,
    classifier: str | Callable[[], nn.Module] | None = None,
    families: Sequence[str] = ("ddpm",),
    validation: LabeledImages | None = None,
    splits: int = 3,
    repeats: int | None = None,
    seed: int = 0,
    out: str | os.PathLike = "synthaug-recommend",
    storage: Any = None,
    study_name: str = "recommend",
    candidates: Sequence[Arm] | None = None,
    bases: Sequence[str] = ("classic", "TA"),
    guidance: Sequence[float] | None = None,
    eta: int = 3,
    min_rung_share: float = MIN_RUNG_SHARE,
    rule: Rule = "interval",
    classifier_steps: int | None = None,
    max_classifier_steps: int = DEFAULT_STEPS,
    generator_steps: int | None = None,
    generator_options: Mapping[str, Mapping[str, Any]] | None = None,
    bank_per_class: int | None = None,
    batch_size: int = 64,
    classic_options: Mapping[str, Any] | None = None,
    accelerator: str = "auto",
    progress: Callable[[Progress], None] | None = None,
) -> RecommendReport:
    """Races real-only baselines against synthetic recipes on ``data`` and writes the winner to ``out/recipe.json``.

    Holds out stratified validation folds (``splits``; or scores on ``validation``, a held-out set of the
    user's own), trains each family's generator on a fold's training part only, and races every candidate
    with successive halving: short classifier runs on one fold for all, ``eta`` times longer runs on more
    folds for the best ``1/eta`` and the best baseline, until two are left, trained for the full steps on
    every fold (``repeats`` seeds each; default 1, or 3 with ``validation=``). Gains over the best baseline are paired by fold and seed.
    Step counts come from ``budget_minutes`` (measured on this machine), or are given.

    Args:
        data: the user's labelled images.
        budget_minutes: wall time for everything, generators included (checked before any long run).
        classifier: ``"cnn"`` (default), ``"resnet"``, or a factory of an ``nn.Module`` (or of a
            ``LightningModule``, which trains itself: only flips, shifts and appended samples are raced then).
        families: generator families whose samples are raced (the first is the one to try first).
        out: the study's folder: ``study.journal``, generators and banks, runs, ``report.md``, ``recipe.json``.
        storage: an Optuna storage URL (``sqlite:///...``, ``postgresql://...``, ``redis://...``) or journal
            file that several processes share; every process runs the same call (default: a journal in ``out``).
        candidates: :class:`~synthaug.evaluation.Arm` s to race instead of the default grid.
        bases: the baselines (``"classic"``, ``"TA"``, ``"RA"``) that synthetic samples are added to.
        guidance: classifier-free guidance scales to race (e.g. ``(0, 1, 2)``; families that guide, the ddpm):
            each scale samples its own bank from the same generators and is a source of its own in the
            candidates ("ddpm g2 mixup"), so the scale is chosen by the validation folds, for what it does to
            the classifier, not by FID. Default: the generator's own scale only.
        min_rung_share: the first rungs' share of ``max_classifier_steps`` when the budget allows, else of the
            last rung's steps (strong augmentation ranks low in short runs; see :data:`MIN_RUNG_SHARE`).
        rule: a synthetic recipe wins when its gain's whole 95% interval is above 0 (``"interval"``) or its mean is (``"mean"``).
        classifier_steps, generator_steps: fixed step counts (the last rung's and the generators'), instead of the budget's.
        max_classifier_steps: the most the budget gives the last rung (the yardstick's length by default).
        generator_options: each family's hyper-parameters, e.g. ``{"ddpm": {"base_channels": 32}}``.
        bank_per_class: synthetic samples per class in each bank (default: 16 per training image of the largest
            class, between 100 and 1,000).
        progress: called with a :class:`Progress` after every run (the CLI draws a bar from it).

    Returns:
        The :class:`RecommendReport` (also in ``out/report.md``); ``out/recipe.json`` holds the recommendation.
        Ctrl-C writes a partial report and leaves the study to resume (call again with the same arguments).

    Example:
        >>> report = synthaug.recommend(train, budget_minutes=60, out="runs/recommend")  # doctest: +SKIP
        >>> print(report.verdict)  # doctest: +SKIP
    """
    started = time.perf_counter()
    if not isinstance(data, LabeledImages):
        raise TypeError(f"data must be a synthaug LabeledImages, got {type(data).__name__}")
    if not budget_minutes > 0:
        raise ValueError(f"budget_minutes must be > 0, got {budget_minutes}")
    unknown = [f for f in families if f not in GENERATORS]
    if unknown:
        raise ValueError(f"unknown generator family {unknown[0]!r}; choose from {sorted(GENERATORS)}")
    if repeats is None:  # a paired interval needs several runs: folds give them, a single validation set needs seeds
        repeats = 3 if validation is not None else 1
    if eta < 2 or repeats < 1:
        raise ValueError(f"eta must be >= 2 and repeats >= 1, got {eta} and {repeats}")
    scales = _check_guidance(guidance, families, candidates)
    out = Path(out)
    if validation is not None:
        check_validation(data, validation)
        parts = [(data, validation)]
    else:
        parts = validation_splits(data, splits, seed=seed)
    units = [(split, seed + r) for r in range(repeats) for split in range(len(parts))]
    name = classifier if isinstance(classifier, str) else "cnn" if classifier is None else getattr(classifier, "__name__", "custom")
    factory: Any = classifier if classifier is not None else "cnn"
    lightning_module = callable(factory) and isinstance(factory(), L.LightningModule)
    if bank_per_class is None:  # 16 samples per training image of the largest class, as the low-data study's 1,000 at 60
        bank_per_class = min(1000, max(100, 16 * max(parts[0][0].class_counts())))
    banks = {}
    for family in families:
        for sampling in [{}] if scales is None else [{"guidance": scale} for scale in scales]:
            source = GeneratorBanks(family, out / "generators", seed=seed, options=(generator_options or {}).get(family, {}),
                                    per_class=bank_per_class, sample_options=sampling)  # fmt: skip
            banks[source.label] = source
    arms = list(candidates) if candidates is not None else default_candidates(banks, bases, lightning_module=lightning_module)
    _check_candidates(arms)
    banks = {arm.source.label: arm.source for arm in arms if isinstance(arm.source, GeneratorBanks)}  # those raced
    generator_families = sorted({bank.family for bank in banks.values()})
    banks_per_generator = max([sum(b.family == f for b in banks.values()) for f in generator_families], default=1)
    by_name = {arm.name: arm for arm in arms}
    synthetic = [arm.name for arm in arms if _source_kind(arm) == "bank"]
    baselines = [arm.name for arm in arms if arm.name not in synthetic]
    training = TrainingRecipe(steps=1, batch_size=batch_size, classic_options=dict(classic_options or {}), accelerator=accelerator)
    fingerprint = _sha(data) + (_sha(validation) if validation is not None else f"-{len(parts)}")
    settings = {"classifier": name, "batch_size": batch_size, "seed": seed, "repeats": repeats, "families": list(families),
                "generator_options": {k: dict(v) for k, v in (generator_options or {}).items()},
                # today's defaults too: a study resumed after a default changed would mix two kinds of generator
                "generator_defaults": {f: GENERATORS[f].config_class.options() for f in families},
                "classic_options": dict(classic_options or {}), "bank_per_class": bank_per_class, "eta": eta,
                "min_rung_share": min_rung_share,
                "classifier_steps": classifier_steps, "max_classifier_steps": max_classifier_steps,
                "generator_steps": generator_steps}  # fmt: skip
    if scales is not None:  # only when raced: studies planned before the option resume as they were
        settings["guidance"] = list(scales)
    cache = _Cache(out / "runs")
    held_out = [_HeldOut(validation_part, allow_overlap=False) for _, validation_part in parts]

    def context(split: int, unit_seed: int) -> _Context:
        return _Context(None, unit_seed, name, factory, parts[split][0], {})

    with quiet_optuna() as optuna:
        store, shared = open_storage(storage, out)
        base = optuna.create_study(storage=store, study_name=study_name, direction="maximize", load_if_exists=True)
        stored = base.user_attrs.get("plan")
        if stored is not None:
            plan = Plan.from_dict(stored)
            if plan.data != fingerprint or plan.candidates != [a.name for a in arms] or plan.settings != json.loads(json.dumps(settings)):
                raise ValueError(f"the study {study_name!r} in {store if shared else out} was planned for other data, candidates "
                                 "or settings: give another out= (--out) or study_name, or the same arguments as before")  # fmt: skip
        else:
            rates = _calibrate(arms, banks, context(*units[0]), parts[0][1], training, bool(synthetic))
            budget = budget_minutes * 60 - (time.perf_counter() - started)
            plan = make_plan([a.name for a in arms], synthetic, units, families=generator_families, classes=data.num_classes,
                             rates=rates, budget=budget, eta=eta, classifier_steps=classifier_steps,
                             max_classifier_steps=max_classifier_steps, generator_steps=generator_steps,
                             bank_per_class=bank_per_class, min_rung_share=min_rung_share,
                             banks_per_generator=banks_per_generator)  # fmt: skip
            plan.data, plan.settings = fingerprint, json.loads(json.dumps(settings))
            base.set_user_attr("plan", plan.to_dict())
        logger.info("plan: %s", plan.to_dict())
        tracker = _Tracker(plan, data.num_classes, progress)
        for bank in banks.values():
            bank.steps, bank.on_made = plan.generator_steps, tracker.generator_done

        rungs: list[dict[str, list[float]]] = []
        current = [a.name for a in arms]
        study = None
        try:
            for rung in range(plan.rungs):
                # trials are enqueued by name; the sampler only ever sees a trial another process took first
                study = optuna.create_study(storage=store, study_name=f"{study_name}:rung-{rung + 1}", direction="maximize",
                                            load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=seed))  # fmt: skip
                tracker.start_rung(rung, rung_results(study))
                recipe = TrainingRecipe(**{**training.__dict__, "steps": plan.rung_steps[rung]})

                def evaluate(candidate: str, rung: int = rung, recipe: TrainingRecipe = recipe) -> dict[str, Any]:
                    accuracies, step_seconds = [], []
                    for split, unit_seed in plan.units[: plan.rung_units[rung]]:
                        fresh, clock = sum(b.fresh for b in banks.values()), time.perf_counter()
                        result = _one(by_name[candidate], context(split, unit_seed), recipe, parts[split][1], cache, "",
                                      held_out[split])
                        seconds = time.perf_counter() - clock
                        if sum(b.fresh for b in banks.values()) == fresh and seconds > plan.run_seconds(rung) / 4:
                            step_seconds.append(seconds / recipe.steps)  # trained now (not from the cache), no generator
                        accuracies.append(float(result["accuracy"]))
                        tracker.run_done(rung)
                    return {"accuracies": accuracies, "step_seconds": max(step_seconds) if step_seconds else None}

                results = run_rung(study, current, evaluate, shared=shared, on_result=tracker.result)
                rungs.append(results)
                if rung + 1 < plan.rungs:
                    keep = max(2, -(-len(current) // plan.eta))
                    current = select(results, baselines, keep)
                    if plan.budget > 0:
                        _replan(plan, base, rung, study, current, tracker, optuna, store, study_name,
                                families={by_name[c].source.family for c in current if c in synthetic}, classes=data.num_classes)  # fmt: skip
        except KeyboardInterrupt:
            last = [rung_results(study)] if study is not None else []
            partial = [r for r in [*rungs, *last] if any(name in r for name in baselines)]
            if partial:
                _report(partial, plan, synthetic, baselines, rule, started, interrupted_in=len(rungs) + 1).save(out)
            raise
    report = _report(rungs, plan, synthetic, baselines, rule, started)
    chosen = by_name[report.recommended]
    kind = _source_kind(chosen)
    run = chosen.source.run_dir(parts[0][0]) if kind == "bank" else None
    recipe_file = recipe_of(
        chosen.name, {**chosen.options(), "source": kind}, class_names=data.class_names, image_shape=data.image_shape,
        bank=chosen.source.bank_dir(parts[0][0]) if run else None, generator=run / "generator" if run else None,
        classic_options=dict(classic_options or {}), synthetic_helps=report.synthetic_helps, verdict=report.verdict,
        baseline=report.baseline, gains=[{k: r[k] for k in ("name", "gain", "low", "high", "accuracy", "rung", "units")}
                                         for r in report.rows],
        settings={**settings, "trained_on": f"{len(parts[0][0])} of {len(data)} images (the first split's training part)"
                  if run and validation is None else f"{len(data)} images"},
    ).save(out / "recipe.json")  # fmt: skip
    report.recipe = str(recipe_file)
    report.save(out)
    return report


def _replan(plan: Plan, base: Any, rung: int, study: Any, survivors: list[str], tracker: _Tracker, optuna: Any, store: Any,
            study_name: str, *, families: set[str], classes: int) -> None:  # fmt: skip
    """Sets the steps of the rungs after ``rung`` from the time left and the survivors' measured speed, once:
    the first process to get here stores them in the study, and every other (or a resumed one) reads them."""
    key = f"steps after rung {rung + 1}"
    if key not in base.user_attrs:
        state = optuna.trial.TrialState.COMPLETE
        spent = sum(t.user_attrs.get("seconds", 0.0) for r in range(rung + 1)
                    for t in optuna.load_study(study_name=f"{study_name}:rung-{r + 1}", storage=store).get_trials(states=(state,)))  # fmt: skip
        measured = [t.user_attrs.get("step_seconds") for t in study.get_trials(states=(state,))
                    if trial_candidate(t) in survivors]  # fmt: skip
        measured = [m for m in measured if m]
        step_seconds = max(measured) if measured else plan.rates.classifier_step
        splits = {split for split, _ in plan.units}
        used = {split for split, _ in plan.units[: plan.rung_units[rung]]}
        steps, cost = rescale(plan, rung, len(survivors), step_seconds, plan.budget - spent, len(splits - used) * len(families),
                              classes)  # fmt: skip
        base.set_user_attr(key, {"steps": steps, "estimate": cost, "spent": spent, "step_seconds": step_seconds})
        logger.info("after rung %d: %.0f s spent, %.3f s a step; steps now %s", rung + 1, spent, step_seconds, steps)
    stored = base.user_attrs[key]
    plan.rung_steps = list(stored["steps"])
    plan.estimate = tracker.done + stored["estimate"]


def _report(rungs: list[dict[str, list[float]]], plan: Plan, synthetic: list[str], baselines: list[str], rule: Rule,
            started: float, *, interrupted_in: int | None = None) -> RecommendReport:  # fmt: skip
    rows, baseline = summarise(rungs, plan.rung_steps, synthetic, baselines)
    recommended, helps, line = verdict(rows, baseline, rule)
    if interrupted_in is not None:
        line = f"interrupted in rung {interrupted_in} of {plan.rungs}; so far: {line}"
    return RecommendReport(rows, baseline, recommended, helps, line, time.perf_counter() - started, interrupted_in is None,
                           plan.to_dict())  # fmt: skip


class _Tracker:
    """Turns finished runs into :class:`Progress` (estimated seconds done, from the plan's rates)."""

    def __init__(self, plan: Plan, classes: int, progress: Callable[[Progress], None] | None) -> None:
        self.plan, self.classes, self.progress = plan, classes, progress
        self.done, self.leader, self.stage = 0.0, None, "starting"
        self.best = -1.0

    def _emit(self) -> None:
        if self.progress is not None:
            self.progress(Progress(min(self.done, self.plan.estimate), self.plan.estimate, self.leader, self.stage))

    def start_rung(self, rung: int, finished: Mapping[str, list[float]]) -> None:
        self.stage = f"rung {rung + 1}/{self.plan.rungs}"
        self.best = -1.0
        for name, accuracies in finished.items():
            self.done += len(accuracies) * self.plan.run_seconds(rung)
            self.result(name, accuracies, emit=False)
        self._emit()

    def run_done(self, rung: int) -> None:
        self.done += self.plan.run_seconds(rung)
        self._emit()

    def generator_done(self) -> None:  # called once a bank is sampled: a generator's share per bank
        self.done += self.plan.generator_seconds(self.classes) / self.plan.banks_per_generator
        self._emit()

    def result(self, name: str, accuracies: list[float], emit: bool = True) -> None:
        mean = sum(accuracies) / len(accuracies)
        if mean > self.best:
            self.best, self.leader = mean, f"{name} {100 * mean:.1f}%"
        if emit:
            self._emit()
