"""Successive halving over the candidates, one Optuna study per rung.

Each rung is a study (``NAME:rung-R``) whose trials are the rung's candidates, enqueued by name
(``{"recipe": name}``); a trial trains the candidate on the rung's units (``(split, seed)`` pairs)
and records every unit's validation accuracy, so that the next rung and the report can pair runs
by unit. Optuna keeps the trials in its storage: a journal file under ``out/`` by default (Ctrl-C
leaves the finished trials there, and a rerun enqueues only what is missing), or any storage URL
that several processes or machines share (each takes the waiting trials; all wait for the rung to
finish, then compute the same next rung). Why not Optuna's pruners: see docs/design.md.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: the trial parameter that names a candidate
PARAM = "recipe"
#: seconds between looks at a shared study while other processes finish a rung
POLL_SECONDS = 5.0


def optuna_module() -> Any:
    """Optuna, imported on first use (an extra: ``pip install 'synthaug[recommend]'``)."""
    try:
        import optuna
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("synthaug recommend races candidates with Optuna: pip install 'synthaug[recommend]'") from err
    return optuna


@contextmanager
def quiet_optuna() -> Iterator[Any]:
    """Optuna with its per-trial INFO lines off (restored after) and its experimental-feature warnings muted."""
    optuna = optuna_module()
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield optuna
    finally:
        optuna.logging.set_verbosity(level)


def open_storage(storage: Any, out: Path) -> tuple[Any, bool]:
    """``(storage, shared)``: a journal file under ``out`` (``None``), a journal file path, a ``redis://``
    URL, an RDB URL (``sqlite:///...``, ``postgresql://...``) or a storage object."""
    optuna = optuna_module()
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.journal"))), False
    if isinstance(storage, str) and storage.startswith("redis://"):
        return optuna.storages.JournalStorage(JournalRedisBackend(storage)), True
    if isinstance(storage, (str, Path)) and "://" not in str(storage):
        return optuna.storages.JournalStorage(JournalFileBackend(str(storage))), True
    return storage, True


def trial_candidate(trial: Any) -> str | None:
    """The candidate a trial runs (its queued parameter)."""
    fixed = trial.system_attrs.get("fixed_params") or trial.params
    return fixed.get(PARAM)


def rung_results(study: Any) -> dict[str, list[float]]:
    """Each candidate's per-unit accuracies from the rung's finished trials."""
    optuna = optuna_module()
    done = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        name = trial_candidate(trial)
        if name is not None and "accuracies" in trial.user_attrs:
            done[name] = list(trial.user_attrs["accuracies"])
    return done


def run_rung(
    study: Any,
    candidates: Sequence[str],
    evaluate: Callable[[str], dict[str, Any]],
    *,
    shared: bool,
    on_result: Callable[[str, list[float]], None] | None = None,
) -> dict[str, list[float]]:
    """Runs the rung's missing candidates (this process's share, with a shared study) and returns every
    candidate's accuracies once all have finished. ``evaluate(name)`` returns the trial's user attributes,
    ``"accuracies"`` (one per unit) among them."""
    optuna = optuna_module()
    state = optuna.trial.TrialState
    distribution = {PARAM: optuna.distributions.CategoricalDistribution(list(candidates))}
    while True:
        done = rung_results(study)
        missing = [name for name in candidates if name not in done]
        if not missing:
            return {name: done[name] for name in candidates}
        trials = study.get_trials(deepcopy=False, states=(state.WAITING, state.RUNNING))
        if not shared:  # our own journal: a RUNNING trial was cut off (Ctrl-C, a crash) and is tried again
            for trial in trials:
                if trial.state == state.RUNNING:
                    study._storage.set_trial_state_values(trial._trial_id, state=state.FAIL)
            trials = [t for t in trials if t.state == state.WAITING]
        pending = {trial_candidate(t) for t in trials}
        for name in missing:
            if name not in pending:
                study.enqueue_trial({PARAM: name})
        if not study.get_trials(deepcopy=False, states=(state.WAITING,)):
            time.sleep(POLL_SECONDS)  # other processes are running the rest of this rung
            continue
        trial = study.ask(distribution)
        name = trial.params[PARAM]
        queued = study._storage.get_trial_system_attrs(trial._trial_id).get("fixed_params")
        if not queued or name in done:  # another process took the queued one
            study.tell(trial, state=state.FAIL)
            continue
        started = time.perf_counter()
        try:
            attrs = evaluate(name)  # {"accuracies": one per unit, ...}: all kept with the trial
        except BaseException:
            study.tell(trial, state=state.FAIL)
            raise
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        accuracies = attrs["accuracies"]
        study.tell(trial, sum(accuracies) / len(accuracies))
        if on_result is not None:
            on_result(name, accuracies)


def select(results: dict[str, list[float]], baselines: Sequence[str], keep: int) -> list[str]:
    """The next rung's candidates: the best ``keep`` by mean accuracy, and the best baseline (every gain is
    taken against it, so it runs every rung); ties keep the earlier candidate."""
    order = sorted(results, key=lambda name: -sum(results[name]) / len(results[name]))
    chosen = order[:keep]
    best_baseline = next((name for name in order if name in baselines), None)
    if best_baseline is not None and best_baseline not in chosen:
        chosen.append(best_baseline)
    return [name for name in results if name in chosen]  # in candidate order
