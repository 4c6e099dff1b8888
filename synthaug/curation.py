"""Choosing which synthetic samples to train on, with a classifier trained on the real data (the judge).

:func:`filter_samples` drops, class by class, the samples the judge is confidently wrong about
(it puts them in another class with probability >= ``drop_wrong``) and, optionally, the share
``drop_easy`` of each class that it finds easiest (highest probability of their own class: samples
that teach what the real images already teach). :func:`keep_confident` keeps each class's most
convincing share. Both return a view of the bank or pool: nothing is copied.
"""

from __future__ import annotations

import torch
from torch import nn

from synthaug.inference import predict
from synthaug.synthetic import Pool


def _own_and_best(pool: Pool, judge: nn.Module, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample: the judge's probability of its own class, its top class and that class's probability."""
    own, top, top_p = torch.empty(len(pool)), torch.empty(len(pool), dtype=torch.int64), torch.empty(len(pool))
    for start in range(0, len(pool), batch_size):
        index = torch.arange(start, min(start + batch_size, len(pool)))
        probabilities = predict(judge, pool.images(index), probabilities=True)
        if probabilities.shape[1] != pool.num_classes:
            raise ValueError(f"the judge outputs {probabilities.shape[1]} classes but the samples have {pool.num_classes}")
        own[index] = probabilities[torch.arange(len(index)), pool.labels[index]]
        top_p[index], top[index] = probabilities.max(1)
    return own, top, top_p


def keep_confident(pool: Pool, judge: nn.Module, keep: float, *, batch_size: int = 1024) -> Pool:
    """The ``keep`` share of each class's samples that ``judge`` gives the highest probability of their own label."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    own, _, _ = _own_and_best(pool, judge, batch_size)
    kept = []
    for c in range(pool.num_classes):
        members = pool.indices_of(c)
        top = own[members].argsort(descending=True)[: max(1, round(keep * len(members)))] if len(members) else members
        kept.append(members[top])
    return pool.select(torch.cat(kept).sort().values)


def filter_samples(
    pool: Pool,
    judge: nn.Module,
    *,
    drop_wrong: float | None = 0.9,
    drop_easy: float | None = None,
    batch_size: int = 1024,
) -> Pool:
    """``pool`` without the samples ``judge`` is confidently wrong about, and without each class's easiest share.

    Args:
        drop_wrong: drop a sample when the judge's top class is another class and has at least this
            probability (``None``: keep them all).
        drop_easy: drop this share of each class's remaining samples, those with the highest probability of
            their own class (a threshold per class, so every class keeps the same share).
    A class is never emptied: at least its most convincing sample stays.
    """
    if drop_wrong is not None and not 0 < drop_wrong <= 1:
        raise ValueError(f"drop_wrong must lie in (0, 1], got {drop_wrong}")
    if drop_easy is not None and not 0 <= drop_easy < 1:
        raise ValueError(f"drop_easy must lie in [0, 1), got {drop_easy}")
    own, top, top_p = _own_and_best(pool, judge, batch_size)
    wrong = (top != pool.labels) & (top_p >= drop_wrong) if drop_wrong is not None else torch.zeros(len(pool), dtype=torch.bool)
    kept = []
    for c in range(pool.num_classes):
        members = pool.indices_of(c)
        if not len(members):
            continue
        candidates = members[~wrong[members]]
        if not len(candidates):
            candidates = members[own[members].argmax()][None]
        if drop_easy:
            order = own[candidates].argsort()  # hardest first
            candidates = candidates[order[: max(1, len(candidates) - round(drop_easy * len(candidates)))]]
        kept.append(candidates)
    return pool.select(torch.cat(kept).sort().values)
