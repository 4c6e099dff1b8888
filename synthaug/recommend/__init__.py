"""Does synthetic data help a classifier on *these* images, and which recipe? :func:`recommend` answers.

It holds out validation folds of the user's labelled images, trains the generator(s) on the training
part only, races real-only baselines (flips and shifts, TrivialAugment, RandAugment, mixup, CutMix)
against synthetic recipes (samples appended, or blended in by mixup or CutMix) with successive halving
through Optuna, reports each candidate's gain over the best baseline with a paired interval, and
writes the winner to ``recipe.json`` (:mod:`synthaug.recipe`), from which the mixing objects build.

Example:
    >>> report = synthaug.recommend(train, budget_minutes=60, out="runs/recommend")  # doctest: +SKIP
    >>> print(report.verdict)  # doctest: +SKIP
    >>> aug = SyntheticAugment.from_recipe("runs/recommend/recipe.json", train)  # doctest: +SKIP
"""

from synthaug.recommend.core import GeneratorBanks, Progress, default_candidates, recommend
from synthaug.recommend.plan import MIN_RUNG_SHARE, Plan, Rates, make_plan, new_units, rescale, validation_splits
from synthaug.recommend.report import RecommendReport
from synthaug.recommend.use import recipe_training

__all__ = [
    "MIN_RUNG_SHARE",
    "GeneratorBanks",
    "Plan",
    "Progress",
    "Rates",
    "RecommendReport",
    "default_candidates",
    "make_plan",
    "new_units",
    "recipe_training",
    "recommend",
    "rescale",
    "validation_splits",
]
