"""synthaug.recommend and recipe.json: end to end on the digits (tiny steps), resume, round trips, bad input."""

import json
import math
import shutil
import sys

import pytest
import torch

from synthaug.augment import SyntheticAugment
from synthaug.bank import SyntheticBank
from synthaug.cli import main
from synthaug.data import load_digits
from synthaug.evaluation import Arm, baseline_arms, policy_arm, real_copies, synthetic_arms
from synthaug.evaluation import runner as runner_module
from synthaug.recipe import RecipeError, load_recipe, recipe_of
from synthaug.recommend import (
    GeneratorBanks,
    Plan,
    Rates,
    default_candidates,
    make_plan,
    new_units,
    recipe_training,
    recommend,
    rescale,
    validation_splits,
)
from synthaug.transforms import SyntheticMix
from tests.conftest import TINY_DDPM

DIGITS = {"hflip": False}
#: the fixed steps that keep a whole race within seconds on one core
FAST = {"classifier_steps": 18, "generator_steps": 30, "bank_per_class": 20, "classic_options": DIGITS, "splits": 2,
        "generator_options": {"ddpm": TINY_DDPM}}  # fmt: skip


@pytest.fixture(scope="module")
def small():
    return load_digits().subset(20, seed=0)


def _candidates(out):
    bank = GeneratorBanks("ddpm", out / "generators", seed=0, options=TINY_DDPM, per_class=20)
    arms = baseline_arms(("classic",), (None, "mixup"))
    return arms + synthetic_arms("ddpm", bank, policy_arm("classic"), mixes=("mixup",), controls=False)


@pytest.fixture(scope="module")
def race(small, tmp_path_factory):
    """One whole race: 2 baselines and 2 synthetic recipes, 2 folds, a tiny ddpm per fold."""
    out = tmp_path_factory.mktemp("recommend")
    events = []
    report = recommend(small, budget_minutes=10, out=out, candidates=_candidates(out), progress=events.append, **FAST)
    return out, report, events


def test_validation_splits_are_stratified_folds(small):
    folds = validation_splits(small, 3, seed=0)
    held = torch.cat([validation.labels for _, validation in folds])
    assert len(held) == len(small) and all(len(t) + len(v) == len(small) for t, v in folds)
    assert all(min(v.class_counts()) >= 6 for _, v in folds)  # every class in every fold
    assert [len(v) for _, v in validation_splits(small, 3, seed=0)] == [len(v) for _, v in folds]


def test_a_split_that_leaves_a_class_without_images_is_one_clear_line(small):
    two = small.select(torch.cat([torch.nonzero(small.labels != 0).flatten(), torch.nonzero(small.labels == 0).flatten()[:2]]))
    with pytest.raises(ValueError, match=r"class '0' has 2 image\(s\), so 3 validation folds .* use splits=2"):
        validation_splits(two, 3)
    train, validation = small.holdout(0.2, seed=0)
    with pytest.raises(ValueError, match="the validation set's classes .* differ from the data's"):
        recommend(train, budget_minutes=1, validation=_renamed(validation))


def _renamed(data):
    from synthaug.data import LabeledImages

    return LabeledImages(data.images, data.labels, [f"digit {c}" for c in data.class_names])


def test_the_plan_fits_the_budget_or_names_the_minimum():
    rates = Rates(classifier_overhead=0.5, classifier_step=0.01, generator_overhead=2, generator_step=0.1, sample=0.001)
    names, synthetic, units = [f"c{i}" for i in range(9)], ["c7", "c8"], [(0, 0), (1, 0), (2, 0)]
    plan = make_plan(names, synthetic, units, families=["ddpm"], classes=10, rates=rates, budget=3600, eta=3, bank_per_class=100)
    assert plan.rung_units == [1, 2, 3] and len(plan.rung_steps) == 3 and plan.rung_steps[-1] <= 3000
    # the first rung is no shorter than a third of the last (strong augmentation ranks low in short runs), and
    # the second, with the same steps, reuses the first's run and adds a fold: priced once, so the budget is filled
    assert plan.rung_steps[0] == plan.rung_steps[1] == round(plan.rung_steps[-1] / 3) and plan.estimate <= 3600
    assert new_units(plan, 1) == 1 and new_units(plan, 2) == 3
    tight = make_plan(names, synthetic, units, families=["ddpm"], classes=10, rates=rates, budget=600, eta=3, bank_per_class=100)
    assert tight.rung_steps[-1] < 3000 and 0.99 * 600 < tight.estimate <= 600  # the reuse is priced: the budget is filled
    # the first rungs take a third of the yardstick's 3,000 steps while the budget allows, not a third of a
    # last rung the first (pessimistic) rates shortened; below that, a third of the last rung
    assert tight.rung_steps[:2] == [1000, 1000]
    short = make_plan(names, synthetic, units, families=["ddpm"], classes=10, rates=rates, budget=300, eta=3, bank_per_class=100)
    assert short.rung_steps[0] == short.rung_steps[1] == round(short.rung_steps[-1] / 3) < 1000 and short.estimate <= 300
    ninth = make_plan(names, synthetic, units, families=["ddpm"], classes=10, rates=rates, budget=600, eta=3,
                      bank_per_class=100, min_rung_share=1 / 9)  # fmt: skip
    assert ninth.rung_steps[0] == 333 < tight.rung_steps[0] and ninth.rung_steps[-1] > tight.rung_steps[-1]  # shorter first, longer last
    with pytest.raises(ValueError, match=r"min_rung_share must be in \(0, 1\]"):
        make_plan(names, synthetic, units, families=["ddpm"], classes=10, rates=rates, budget=3600, min_rung_share=0)
    assert 100 <= plan.generator_steps <= 3000
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    with pytest.raises(ValueError, match=r"a budget of 0\.10 min is too small .* needs about [0-9.]+ min"):
        make_plan(names, synthetic, units, families=["ddpm"], classes=10, rates=rates, budget=6, eta=3)


def test_after_a_rung_the_rest_is_fitted_to_the_time_left():
    rates = Rates(classifier_overhead=0.5, classifier_step=0.05)
    names, units = [f"c{i}" for i in range(9)], [(0, 0), (1, 0), (2, 0)]
    plan = make_plan(names, [], units, families=[], classes=10, rates=rates, budget=600, eta=3, classifier_steps=900,
                     min_rung_share=1 / 9)  # fmt: skip
    assert plan.rung_steps == [100, 300, 900]
    faster, cost = rescale(plan, 0, 4, 0.01, remaining=500, generators_left=0, classes=10)  # survivors 5x faster
    assert faster[0] == plan.rung_steps[0] and faster[-1] > plan.rung_steps[-1] and cost <= 500
    assert faster[2] == pytest.approx(3 * faster[1], abs=3)  # the eta ratio stays
    assert rescale(plan, 0, 4, 0.01, remaining=1e9, generators_left=0, classes=10)[0][-1] == 3000  # at most max_steps
    behind, _ = rescale(plan, 0, 4, 0.05, remaining=1, generators_left=0, classes=10)
    assert behind[1:] == [20, 20]  # out of time: the fewest steps a rung takes
    # the default floor: the second rung keeps the first's steps (its runs come from the cache) and only the last stretches
    tied = make_plan(names, [], units, families=[], classes=10, rates=rates, budget=600, eta=3)
    stretched, cost = rescale(tied, 0, 4, 0.01, remaining=500, generators_left=0, classes=10)
    assert stretched[:2] == tied.rung_steps[:2] and stretched[2] > tied.rung_steps[2] and cost <= 500
    assert cost == pytest.approx(4 * 1 * (0.5 + tied.rung_steps[1] * 0.01) + 3 * 3 * (0.5 + stretched[2] * 0.01), rel=0.02)
    # a plan at the floor everywhere (slow first rates) still stretches its last rung once the budget shows room
    flat = make_plan(names, [], units, families=[], classes=10, rates=rates, budget=900, eta=3, classifier_steps=900,
                     min_rung_share=1)  # fmt: skip
    assert flat.rung_steps == [900, 900, 900]
    for rung in (0, 1):
        later, _ = rescale(flat, rung, 4, 0.01, remaining=400, generators_left=0, classes=10)
        assert later[rung + 1 : -1] == flat.rung_steps[rung + 1 : -1] and later[-1] > 900


def test_a_budget_too_small_for_one_candidate_is_one_line(small, tmp_path, capsys):
    arms = [Arm("real + classic", classic=True), Arm("real")]
    with pytest.raises(ValueError, match=r"too small for this data: the smallest race .* needs about [0-9.]+ min"):
        recommend(small, budget_minutes=0.001, out=tmp_path / "a", candidates=arms, families=(), classic_options=DIGITS, splits=2)
    assert not (tmp_path / "a" / "recipe.json").exists() and not (tmp_path / "a" / "report.md").exists()
    assert main(["recommend", "digits", "--budget", "0s"]) == 2
    assert "--budget: must be a duration > 0" in capsys.readouterr().err


def test_the_race_reports_gains_and_a_verdict(race, small):
    out, report, events = race
    names = {row["name"] for row in report.rows}
    assert len(names) == 4 and report.baseline in {"real + classic", "real + classic + real copies mixup"}
    final = [row for row in report.rows if row["rung"] == 1]
    assert report.row(report.baseline)["gain"] == 0 and report.row(report.baseline)["rung"] == 1
    assert {row["units"] for row in final} == {2} and all(row["steps"] == 18 for row in final)
    assert len(final) in (2, 3)  # the best two, and the best baseline if it is not among them
    for row in report.rows:  # every gain is the paired mean difference with the best baseline, in points
        reference = report.row(report.baseline)
        if row["rung"] == 1:
            expected = 100 * (sum(row["accuracies"]) - sum(reference["accuracies"])) / 2
            assert row["gain"] == pytest.approx(expected)
    assert report.verdict.startswith("use recipe") == report.synthetic_helps
    assert report.verdict.startswith(("use recipe", "synthetic data does not"))
    assert (out / "report.md").read_text().startswith(f"**{report.verdict}**")
    assert events and events[-1].done == pytest.approx(events[-1].total, rel=0.5) and events[-1].leader
    recipe = load_recipe(out / "recipe.json")
    assert recipe.name == report.recommended and recipe.verdict == report.verdict
    assert [g["name"] for g in recipe.gains] == [row["name"] for row in report.rows]


def _recipe(race, small, name, tmp_path):
    """A recipe for one of the race's candidates, written next to the race's generators (paths are relative)."""
    out = race[0]
    arm = {a.name: a for a in _candidates(out)}[name]
    kind = None if arm.source is None else "real" if arm.source is real_copies else "bank"
    run = next((out / "generators").glob("ddpm-*"))
    recipe = recipe_of(name, {**arm.options(), "source": kind}, class_names=small.class_names, image_shape=small.image_shape,
                       bank=run / "bank" if kind == "bank" else None, classic_options=DIGITS, verdict="test")  # fmt: skip
    return recipe.save(out / f"recipe-{tmp_path.name}.json")


def test_an_appending_recipe_round_trips_into_synthetic_augment(race, small, tmp_path):
    path = _recipe(race, small, "real + classic + ddpm", tmp_path)
    aug = SyntheticAugment.from_recipe(path, small, seed=3)
    assert len(aug) == len(small) + round(0.5 * len(small)) and aug.transform is not None
    assert int(aug.synthetic_mask().sum()) == round(0.5 * len(small))
    image, label = aug[len(small)]
    assert image.shape == small.image_shape and image.dtype == torch.uint8 and 0 <= label < 10
    with pytest.raises(ValueError, match="appends synthetic samples .* use SyntheticAugment.from_recipe"):
        SyntheticMix.from_recipe(path)
    parts = recipe_training(path, small)
    assert isinstance(parts["dataset"], SyntheticAugment) and parts["batch_transform"] is None


def test_a_mixing_recipe_round_trips_into_synthetic_mix(race, small, tmp_path):
    path = _recipe(race, small, "real + classic + ddpm mixup", tmp_path)
    mix = SyntheticMix.from_recipe(path, seed=0)
    assert (mix.mode, mix.ratio, mix.alpha) == ("mixup", 0.5, 0.4) and mix.transform is not None
    images, labels = small.images[:8], small.labels[:8]
    out_images, targets = mix(images, labels, generator=torch.Generator().manual_seed(0))
    assert out_images.shape == images.shape and targets.shape == (8, 10)
    assert torch.allclose(targets.sum(1), torch.ones(8)) and (out_images != images).any()
    with pytest.raises(ValueError, match="blends synthetic samples into batches .* use SyntheticMix.from_recipe"):
        SyntheticAugment.from_recipe(path, small)


def test_a_baseline_recipe_round_trips(race, small, tmp_path):
    path = _recipe(race, small, "real + classic + real copies mixup", tmp_path)
    recipe = load_recipe(path)
    assert not recipe.is_synthetic and recipe.mixes_batches and recipe.bank is None
    with pytest.raises(TypeError, match="copies of the real images"):
        SyntheticMix.from_recipe(path)
    mix = SyntheticMix.from_recipe(path, small)
    assert type(mix.source).__name__ == "ImagePool" and mix.source.num_classes == 10  # the real images, as a pool
    plain = _recipe(race, small, "real + classic", tmp_path.parent / "plain")
    parts = recipe_training(plain, small)
    assert parts["batch_transform"] is None and parts["policy"] is None and len(parts["dataset"]) == len(small)
    assert parts["dataset"][0][0].dtype == torch.uint8  # flips and shifts on the real images
    with pytest.raises(ValueError, match="is a real-only baseline"):
        SyntheticAugment.from_recipe(plain, small)


def test_recipes_round_trip_into_the_integrations(race, small, tmp_path):
    pytest.importorskip("datasets")
    from synthaug.integrations.huggingface import SyntheticRows
    from synthaug.integrations.lightning import SyntheticMixCallback

    mixing = _recipe(race, small, "real + classic + ddpm mixup", tmp_path)
    callback = SyntheticMixCallback.from_recipe(mixing)
    assert (callback.mix.mode, callback.mix.ratio) == ("mixup", 0.5)
    appending = _recipe(race, small, "real + classic + ddpm", tmp_path.parent / "append")
    rows = SyntheticRows.from_recipe(appending)
    batch = rows({"image": [img[0].numpy() for img in small.images[:4]], "label": small.labels[:4].tolist()}, [0, 1, 2, 3])
    assert batch["is_synthetic"] == [False] * 4 + [True] * 2
    assert SyntheticMixCallback.from_recipe(appending).mix.mode == "append"
    with pytest.raises(ValueError, match="SyntheticRows"):
        SyntheticRows.from_recipe(mixing)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda body: body.update(version=2), r"version 2 is not the one this synthaug reads \(1\): upgrade synthaug"),
        (lambda body: body.update(format="other"), "is not a synthaug recipe"),
        (lambda body: body.pop("verdict"), "lacks the field 'verdict'"),
        (lambda body: body.update(extra=1), "unknown field 'extra'"),
        (lambda body: body["arm"].update(ratio=0.9), "field 'arm' differs from what recommend wrote"),
        (lambda body: body.update(bank="nowhere"), "field 'bank' differs"),
    ],
)
def test_a_recipe_edited_by_hand_or_of_another_version_is_refused_by_name(race, small, tmp_path, edit, message):
    path = _recipe(race, small, "real + classic + ddpm", tmp_path)
    body = json.loads(path.read_text())
    edit(body)
    path.write_text(json.dumps(body))
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)


def test_hand_edits_can_be_accepted_and_a_missing_bank_is_named(race, small, tmp_path):
    path = _recipe(race, small, "real + classic + ddpm", tmp_path)
    body = json.loads(path.read_text())
    body["arm"]["ratio"] = 0.25
    path.write_text(json.dumps(body))
    assert load_recipe(path, verify=False).arm["ratio"] == 0.25
    moved = tmp_path / "elsewhere" / "recipe.json"
    moved.parent.mkdir()
    shutil.copy(path, moved)  # the bank's relative path no longer leads to it
    with pytest.raises(RecipeError, match=r"takes its samples from the bank .* which is missing"):
        load_recipe(moved, verify=False)
    body["arm"]["policy"] = "autoaugment"
    path.write_text(json.dumps(body))
    with pytest.raises(RecipeError, match="arm option 'policy' must be null or one of"):
        load_recipe(path, verify=False)


def test_an_interrupted_race_resumes_where_it_stopped(small, tmp_path, monkeypatch):
    arms = [Arm("real + classic", classic=True), Arm("real"), Arm("real + classic + LS", classic=True, label_smoothing=0.1)]
    settings = {"candidates": arms, "families": (), "classifier_steps": 18, "classic_options": DIGITS, "splits": 2}
    whole = recommend(small, budget_minutes=5, out=tmp_path / "whole", **settings)
    trained = []
    real_run = runner_module._run
    monkeypatch.setattr(runner_module, "_run", lambda *a, **k: trained.append(a[0].name) or real_run(*a, **k))

    def stop_after_two(progress):
        if len(trained) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        recommend(small, budget_minutes=5, out=tmp_path / "cut", progress=stop_after_two, **settings)
    assert "interrupted in rung 1 of 2" in (tmp_path / "cut" / "report.md").read_text()
    assert not (tmp_path / "cut" / "recipe.json").exists()
    before = len(trained)
    resumed = recommend(small, budget_minutes=5, out=tmp_path / "cut", **settings)
    total = sum(row["units"] + row["rung"] for row in whole.rows)  # a finalist also ran one unit at the first rung
    assert len(trained) - before == total - 2  # only the runs the interrupted race had not finished
    assert [(r["name"], r["accuracies"]) for r in resumed.rows] == [(r["name"], r["accuracies"]) for r in whole.rows]
    with pytest.raises(ValueError, match="was planned for other data, candidates or settings"):
        recommend(small, budget_minutes=5, out=tmp_path / "cut", **{**settings, "classifier_steps": 12})
    assert math.isfinite(resumed.seconds)
    replanned = recommend(small, budget_minutes=2, out=tmp_path / "budget", **{**settings, "classifier_steps": None,
                                                                             "max_classifier_steps": 30})
    journal = json.dumps([json.loads(line) for line in (tmp_path / "budget" / "study.journal").read_text().splitlines()])
    assert "steps after rung 1" in journal and replanned.plan["rung_steps"][-1] == 30  # a generous budget: the cap
    shared = recommend(small, budget_minutes=5, out=tmp_path / "shared", storage=str(tmp_path / "shared.journal"), **settings)
    assert (tmp_path / "shared.journal").is_file() and not (tmp_path / "shared" / "study.journal").exists()
    assert [(r["name"], r["accuracies"]) for r in shared.rows] == [(r["name"], r["accuracies"]) for r in whole.rows]


def test_the_command_runs_a_race_and_writes_the_recipe(tmp_path, capsys, monkeypatch):
    calls = {}

    def fake(data, **kwargs):
        calls.update(kwargs, data=data)
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["synthaug.recommend"], "recommend", fake)
    argv = ["recommend", "digits", "--budget", "1.5h", "--out", str(tmp_path), "--set", "ddpm.base_channels=8", "--no-progress",
            "--guidance", "0", "2"]  # fmt: skip
    assert main(argv) == 130
    assert calls["budget_minutes"] == 90 and calls["generator_options"] == {"ddpm": {"base_channels": 8}}
    assert calls["guidance"] == [0.0, 2.0]
    assert calls["classic_options"] == {"hflip": False} and len(calls["data"]) == 500
    assert "interrupted; rerun the same command to resume" in capsys.readouterr().err


def test_a_lightning_module_factory_races_what_reaches_it_through_the_data(small, tmp_path):
    from synthaug.classifier import ClassifierModule, SmallCNN

    def module():
        return ClassifierModule(SmallCNN(1, 10, head="mlp", image_size=(8, 8)), steps=9)

    arms = [Arm("real"), Arm("real + classic", classic=True)]
    report = recommend(small, budget_minutes=5, out=tmp_path, classifier=module, candidates=arms, families=(),
                       classifier_steps=9, classic_options=DIGITS, splits=2)  # fmt: skip
    assert {row["name"] for row in report.rows} == {"real", "real + classic"}
    assert all(0 < row["accuracy"] <= 1 for row in report.rows) and report.plan["settings"]["classifier"] == "module"
    banks = {"ddpm": GeneratorBanks("ddpm", tmp_path, seed=0, options={}, per_class=10)}
    raced = default_candidates(banks, ("classic", "TA"), lightning_module=True)
    assert [a.name for a in raced] == ["real + classic", "real + classic + ddpm"]


def test_guidance_scales_race_as_sources_that_share_one_generator(small, tmp_path):
    sources = [GeneratorBanks("ddpm", tmp_path / "generators", seed=0, options=TINY_DDPM, per_class=20,
                              sample_options={"guidance": g}) for g in (0.0, 2.0)]  # fmt: skip
    assert [s.label for s in sources] == ["ddpm g0", "ddpm g2"]
    arms = [Arm("real + classic", classic=True)] + [Arm(f"real + classic + {s.label}", s, ratio=0.5, classic=True) for s in sources]
    report = recommend(small, budget_minutes=10, out=tmp_path, candidates=arms, rule="mean", **FAST)
    assert {row["name"] for row in report.rows} == {arm.name for arm in arms}
    assert report.plan["banks_per_generator"] == 2
    first_fold = validation_splits(small, 2, seed=0)[0][0]
    run = sources[0].run_dir(first_fold)
    assert run == sources[1].run_dir(first_fold)  # one generator for both scales
    assert len(list((tmp_path / "generators").glob("ddpm-*"))) <= 2  # one per fold at most (the second only if a scale survived)
    assert sorted(p.name for p in run.glob("bank*")) == ["bank-guidance-0.0", "bank-guidance-2.0"]
    manifests = [json.loads((run / name / "manifest.json").read_text()) for name in ("bank-guidance-0.0", "bank-guidance-2.0")]
    assert [m["sample_options"]["guidance"] for m in manifests] == [0.0, 2.0]
    assert manifests[0]["generator"] == manifests[1]["generator"]
    first, second = (SyntheticBank.open(run / name) for name in ("bank-guidance-0.0", "bank-guidance-2.0"))
    assert not torch.equal(first.images(torch.arange(20)), second.images(torch.arange(20)))  # same noise, other scale
    recipe = load_recipe(tmp_path / "recipe.json")
    if recipe.is_synthetic:  # the recipe names the chosen scale's bank
        chosen = {s.label: s for s in sources}[recipe.name.rsplit(" + ", 1)[1]]
        assert recipe.bank == chosen.bank_dir(first_fold).resolve()
    names = [a.name for a in default_candidates({s.label: s for s in sources}, ("classic",), lightning_module=False)]
    assert {"real + classic + ddpm g0 mixup", "real + classic + ddpm g2 cutmix", "real + classic + ddpm g2"} <= set(names)


@pytest.mark.parametrize("kwargs, message", [
    ({"guidance": (1.0, 1.0)}, "guidance scales must differ"),
    ({"guidance": (-1.0,)}, r"guidance scales lie in \[0, 20\]"),
    ({"guidance": (float("nan"),)}, r"guidance scales lie in \[0, 20\]"),
    ({"guidance": ()}, "non-empty list of scales"),
    ({"guidance": (1.0,), "families": ("vae",)}, "which family 'vae' does not have"),
    ({"guidance": (1.0,), "candidates": [Arm("real"), Arm("real + classic", classic=True)]}, "give each GeneratorBanks"),
])  # fmt: skip
def test_bad_guidance_is_one_clear_line_before_any_training(small, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        recommend(small, budget_minutes=5, out=tmp_path, **kwargs)
    assert not (tmp_path / "generators").exists()


def _banks(root, **kwargs):
    return GeneratorBanks("ddpm", root, **{"seed": 0, "options": TINY_DDPM, "per_class": 20, **kwargs})


@pytest.mark.parametrize("second, message", [
    ({"sample_options": {"guidance": 2.0}, "label": "ddpm"}, "two GeneratorBanks labelled 'ddpm': give each its own label="),
    ({"options": {**TINY_DDPM, "base_channels": 16}, "label": "ddpm small"}, "different seeds or options into one folder"),
    ({"seed": 1, "label": "ddpm seed 1"}, "different seeds or options into one folder"),
    ({"per_class": 40, "label": "ddpm 40"}, "banks of 20 and 40 per class into one folder"),
])  # fmt: skip
def test_sources_that_would_clash_are_one_clear_line_before_any_training(small, tmp_path, second, message):
    sources = [_banks(tmp_path / "generators"), _banks(tmp_path / "generators", **second)]
    arms = [Arm("real + classic", classic=True)] + [Arm(f"real + classic + {i}", s, ratio=0.5, classic=True)
                                                    for i, s in enumerate(sources)]  # fmt: skip
    with pytest.raises(ValueError, match=message):
        recommend(small, budget_minutes=5, out=tmp_path, candidates=arms, **FAST)
    assert not (tmp_path / "generators").exists()
    shared = _banks(tmp_path / "generators")  # one source in two candidates, or two that differ only in sampling: fine
    other_root = _banks(tmp_path / "elsewhere", options={**TINY_DDPM, "base_channels": 16}, label="ddpm small")
    from synthaug.recommend.core import _check_candidates

    _check_candidates([Arm("real"), Arm("a", shared, ratio=0.5), Arm("b", shared, ratio=0.5, classic=True),
                       Arm("c", _banks(tmp_path / "generators", sample_options={"guidance": 2.0}), ratio=0.5),
                       Arm("d", other_root, ratio=0.5)])  # fmt: skip
