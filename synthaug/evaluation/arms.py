"""Arms: the ways of building a training set (and of training on it) that a downstream study compares."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from synthaug.augment import Mode
from synthaug.bank import SyntheticBank
from synthaug.classifier.training import _check_batch_options
from synthaug.data.labeled import LabeledImages
from synthaug.generators.base import ConditionalGenerator
from synthaug.policies import POLICIES

#: a source for an arm: a bank, a generator or the path of either; a ``LabeledImages`` pool; or one of
#: those per size (``{size: source}``) or per size and seed (``{(size, seed): source}``); or a function
#: of the real subset (e.g. one that trains a generator on exactly those images)
ArmSource = Any


def real_copies(subset: LabeledImages) -> LabeledImages:
    """An arm source that is the real subset itself: with ``teacher=``, the control arm that applies the
    same distillation to real images instead of synthetic ones."""
    return subset


@dataclass(frozen=True)
class Arm:
    """One way of building the training set, and of training on it.

    Args:
        name: the arm's label in tables and plots (and its cache key).
        source: synthetic samples (see :data:`ArmSource`); ``None``: no synthetic data.
        ratio, mode: how :class:`~synthaug.augment.SyntheticAugment` mixes the source in (``mode="balance"``
            tops every class up to the largest, and takes no ratio).
        classic: classic augmentation (flips, shifts; :func:`~synthaug.evaluation.classic_augmentation`) on every image.
        policy: an automatic augmentation policy (``"trivial"``: TrivialAugment, ``"randaugment"``;
            :class:`~synthaug.policies.AugmentPolicy`) on every training image, real and synthetic, after
            ``classic`` and before any mixing.
        label_smoothing: as in ``F.cross_entropy``, in ``[0, 1)``.
        cutmix_alpha: CutMix within each batch (real items with each other; 0: off).
        keep: keep each class's most convincing share of the samples (a bank), by the teacher arm's model.
        drop_wrong, drop_easy: :func:`~synthaug.curation.filter_samples` with the teacher arm's model as judge.
        teacher: ``"soft"`` or ``"hard"``: synthetic items get the teacher arm's model's labels
            (softmax at ``temperature``); with ``source=real_copies`` this is the distillation control.
        synthetic_weight: loss weight of synthetic items (1: as real ones).
        share_end: the synthetic share falls linearly from full to this factor over training (``0``: to none).
        fresh: each bank sample is used at most once over training (``SyntheticAugment(draw="fresh")``);
            a live generator gives fresh samples every epoch anyway.
        mix_alpha: real/synthetic mixup instead of appending: ``ratio`` of each batch's items are blended
            with synthetic samples (``SyntheticMix(mode=mix_mode, alpha=mix_alpha)``).
        mix_mode: ``"mixup"`` (blend the whole image) or ``"cutmix"`` (paste a box of the sample).
        finetune_steps, finetune_part, finetune_lr: a second stage on the real data alone (with classic
            augmentation if the arm has it), training ``"head"`` or ``"all"`` of the network.
        sampler, logit_adjust, reweight, mixup_alpha: loss-side techniques of
            :func:`~synthaug.classifier.train_classifier` (class-balanced sampling, logit adjustment,
            class-balanced or deferred re-weighting, mixup).
        against: the name of the arm its paired difference is reported against besides real only
            (e.g. ``"real + classic"`` for an arm that adds synthetic data on top of it).
    """

    name: str
    source: ArmSource = None
    ratio: float | None = None
    mode: Mode = "append"
    classic: bool = False
    policy: Literal["trivial", "randaugment"] | None = None
    label_smoothing: float = 0.0
    cutmix_alpha: float = 0.0
    keep: float | None = None
    drop_wrong: float | None = None
    drop_easy: float | None = None
    teacher: Literal["soft", "hard"] | None = None
    temperature: float = 1.0
    synthetic_weight: float = 1.0
    share_end: float | None = None
    fresh: bool = False
    mix_alpha: float | None = None
    mix_mode: Literal["mixup", "cutmix"] = "mixup"
    finetune_steps: int = 0
    finetune_part: Literal["all", "head"] = "head"
    finetune_lr: float | None = None
    sampler: Literal["random", "balanced"] = "random"
    logit_adjust: float | None = None
    reweight: Literal["cb", "drw"] | None = None
    mixup_alpha: float = 0.0
    against: str | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"an arm needs a non-empty name without '/', got {self.name!r}")
        synthetic_only = {"ratio": self.ratio, "keep": self.keep, "drop_wrong": self.drop_wrong,
                          "drop_easy": self.drop_easy, "teacher": self.teacher, "share_end": self.share_end,
                          "mix_alpha": self.mix_alpha}  # fmt: skip
        if self.source is None and any(v is not None for v in synthetic_only.values()):
            given = sorted(k for k, v in synthetic_only.items() if v is not None)
            raise ValueError(f"arm {self.name!r} sets {', '.join(given)} but has no synthetic source")
        if self.source is not None and self.ratio is None and self.mode != "balance":
            raise ValueError(f"arm {self.name!r} has a synthetic source but no ratio; give ratio= (e.g. 0.5)")
        if self.keep is not None and not 0 < self.keep <= 1:
            raise ValueError(f"keep must lie in (0, 1], got {self.keep}")
        if self.teacher not in (None, "soft", "hard"):
            raise ValueError(f"teacher must be 'soft', 'hard' or None, got {self.teacher!r}")
        if not (self.synthetic_weight >= 0 and math.isfinite(self.synthetic_weight)):
            raise ValueError(f"synthetic_weight must be a finite number >= 0, got {self.synthetic_weight}")
        if self.fresh and (self.source is None or self.mix_alpha is not None):
            raise ValueError(f"arm {self.name!r}: fresh draws the appended samples of a synthetic source; it needs a "
                             "source and no mix_alpha (mixing draws its samples per batch)")  # fmt: skip
        if self.share_end is not None and not 0 <= self.share_end <= 1:
            raise ValueError(f"share_end must lie in [0, 1], got {self.share_end}")
        if self.mix_alpha is not None and (self.mix_alpha <= 0 or self.mode != "append" or self.teacher is not None):
            raise ValueError("mix_alpha (real/synthetic mixup) needs alpha > 0 and no mode or teacher of its own")
        if self.policy is not None and self.policy not in POLICIES:
            raise ValueError(f"arm {self.name!r}: unknown augmentation policy {self.policy!r}; choose from {list(POLICIES)}")
        if self.mix_mode not in ("mixup", "cutmix"):
            raise ValueError(f"arm {self.name!r}: mix_mode must be 'mixup' or 'cutmix', got {self.mix_mode!r}")
        _check_batch_options(self.label_smoothing, self.mixup_alpha, self.cutmix_alpha)
        if self.finetune_steps < 0 or self.finetune_part not in ("all", "head"):
            raise ValueError(f"finetune_steps must be >= 0 and finetune_part 'all' or 'head', got "
                             f"{self.finetune_steps} and {self.finetune_part!r}")  # fmt: skip

    @property
    def is_real_only(self) -> bool:
        """Plain training on the real images (no augmentation, no technique): what every difference is taken against."""
        return self.source is None and not self.classic and self.options() == Arm("real").options()

    @property
    def needs_teacher(self) -> bool:
        return self.teacher is not None or self.keep is not None or self.drop_wrong is not None or self.drop_easy is not None

    def options(self) -> dict[str, Any]:
        """Everything but the name and source: what, with the source's fingerprint, determines a run."""
        out = asdict(self)
        for key in ("name", "source", "against"):
            out.pop(key)
        for key, default in _TURN_3_DEFAULTS.items():  # at their defaults, runs cached before these options keep their keys
            if out[key] == default:
                out.pop(key)
        return out


_TURN_3_DEFAULTS = {"policy": None, "label_smoothing": 0.0, "cutmix_alpha": 0.0, "mix_mode": "mixup", "fresh": False}


def resolve_source(arm: Arm, size: int, seed: int, subset: LabeledImages) -> Any:
    """The arm's source for this real subset (before :func:`~synthaug.synthetic.as_source`)."""
    raw = arm.source
    if isinstance(raw, Mapping):
        for key in ((size, seed), size):
            if key in raw:
                return raw[key]
        raise ValueError(f"arm {arm.name!r} has sources for {sorted(raw, key=str)} but not for size {size}, seed {seed}")
    if callable(raw) and not isinstance(raw, (SyntheticBank, ConditionalGenerator, LabeledImages)):
        return raw(subset)
    return raw


def standard_arms(
    sources: Mapping[str, ArmSource],
    *,
    ratios: Sequence[float] = (0.25, 0.5, 1.0),
    mode: Mode = "append",
    classic_ratio: float | None = 0.5,
) -> list[Arm]:
    """Real only, real + classic, real + each source at each ratio, and real + classic + each source
    (compared against real + classic)."""
    arms = [Arm("real"), Arm("real + classic", classic=True)]
    for name, source in sources.items():
        arms += [Arm(f"real + {name} {ratio:g}", source, ratio=ratio, mode=mode) for ratio in ratios]
    if classic_ratio is not None:
        arms += [Arm(f"real + classic + {name} {classic_ratio:g}", source, ratio=classic_ratio, mode=mode, classic=True,
                     against="real + classic") for name, source in sources.items()]  # fmt: skip
    return arms


def technique_arms(
    name: str,
    source: ArmSource,
    *,
    ratio: float = 0.5,
    base: str = "real + classic",
    finetune_steps: int = 500,
    control: bool = True,
) -> list[Arm]:
    """The techniques that make synthetic samples help, each on top of real + classic augmentation.

    Plain mixing, soft teacher labels, a lower loss weight, two stages (then fine-tune the head on
    real data), two-sided filtering, real/synthetic mixup and a synthetic share that fades out. Each
    is compared against ``base``. With ``control``, distillation and mixup also run with copies of
    the real images in place of the synthetic ones, so that a gain can be credited to the synthetic
    images rather than to the technique itself.
    """
    common = {"ratio": ratio, "classic": True, "against": base}
    arms = [
        Arm(f"{base} + {name}", source, **common),
        Arm(f"{base} + {name} teacher", source, teacher="soft", temperature=2.0, **common),
    ]
    if control:
        arms.append(Arm(f"{base} + real copies teacher", real_copies, teacher="soft", temperature=2.0, **common))
    arms += [
        Arm(f"{base} + {name} weight 0.5", source, synthetic_weight=0.5, **common),
        Arm(f"{base} + {name} then real", source, finetune_steps=finetune_steps, **common),
        Arm(f"{base} + {name} filtered", source, drop_wrong=0.8, drop_easy=0.2, **common),
        Arm(f"{base} + {name} mixup", source, mix_alpha=0.4, **common),
    ]
    if control:
        arms.append(Arm(f"{base} + real copies mixup", real_copies, mix_alpha=0.4, **common))
    arms.append(Arm(f"{base} + {name} fading", source, share_end=0.0, **{**common, "ratio": 2 * ratio}))
    return arms



def long_tail_baselines(*, mixup_alpha: float = 0.2, policies: Sequence[str] = ()) -> list[Arm]:
    """The cheap loss-side baselines for long-tailed data, each with classic augmentation.

    Plain training, classic augmentation, class-balanced oversampling, deferred re-weighting (DRW,
    from two thirds of training on), logit adjustment (tau = 1), mixup, and mixup + DRW. For each of
    ``policies`` (``"TA"``, ``"RA"``: see :data:`POLICY_NAMES`), the policy alone and under the two
    strongest loss-side baselines (logit adjustment, mixup + DRW), each against the same without it.
    """
    base = "real + classic"
    arms = [
        Arm("real"),
        Arm(base, classic=True),
        Arm("classic + oversampling", classic=True, sampler="balanced", against=base),
        Arm("classic + DRW", classic=True, reweight="drw", against=base),
        Arm("classic + logit adjustment", classic=True, logit_adjust=1.0, against=base),
        Arm("classic + mixup", classic=True, mixup_alpha=mixup_alpha, against=base),
        Arm("classic + mixup + DRW", classic=True, mixup_alpha=mixup_alpha, reweight="drw", against=base),
    ]
    for short in policies:
        policy = _policy_of(short)
        arms += [
            Arm(f"classic + {short}", classic=True, policy=policy, against=base),
            Arm(f"classic + {short} + logit adjustment", classic=True, policy=policy, logit_adjust=1.0,
                against="classic + logit adjustment"),
            Arm(f"classic + {short} + mixup + DRW", classic=True, policy=policy, mixup_alpha=mixup_alpha, reweight="drw",
                against="classic + mixup + DRW"),
        ]  # fmt: skip
    return arms


def _policy_of(short: str) -> str | None:
    if short not in POLICY_NAMES or POLICY_NAMES[short] is None:
        raise ValueError(f"unknown policy {short!r}; choose from {[k for k, v in POLICY_NAMES.items() if v]}")
    return POLICY_NAMES[short]


def long_tail_arms(
    sources: Mapping[str, ArmSource], *, mixup_alpha: float = 0.2, techniques: Sequence[str] = (), ratio: float = 1.0,
    policies: Sequence[str] = (),
) -> list[Arm]:
    """synthaug on long-tailed data, each arm on top of the baseline it is compared with.

    For every source: ``balance`` (synthetic samples top every class up to the head class) on classic
    augmentation and on mixup, and appended in the real proportions (``ratio``) under logit adjustment
    and under mixup + DRW (balancing would make either a no-op: both correct for the training prior,
    which balancing makes uniform). For the sources in ``techniques``: balance with soft teacher
    labels, and with two-sided filtering. For each of ``policies``, the samples appended under the
    policy's logit adjustment and mixup + DRW arms of :func:`long_tail_baselines`.
    """
    arms = []
    for name, source in sources.items():
        for short in policies:
            policy = _policy_of(short)
            arms += [
                Arm(f"classic + {short} + logit adjustment + {name} {ratio:g}", source, ratio=ratio, classic=True, policy=policy,
                    logit_adjust=1.0, against=f"classic + {short} + logit adjustment"),
                Arm(f"classic + {short} + mixup + DRW + {name} {ratio:g}", source, ratio=ratio, classic=True, policy=policy,
                    mixup_alpha=mixup_alpha, reweight="drw", against=f"classic + {short} + mixup + DRW"),
            ]  # fmt: skip
        arms += [
            Arm(f"classic + {name} balance", source, mode="balance", classic=True, against="real + classic"),
            Arm(f"classic + mixup + {name} balance", source, mode="balance", classic=True, mixup_alpha=mixup_alpha,
                against="classic + mixup"),
            Arm(f"classic + logit adjustment + {name} {ratio:g}", source, ratio=ratio, classic=True, logit_adjust=1.0,
                against="classic + logit adjustment"),
            Arm(f"classic + mixup + DRW + {name} {ratio:g}", source, ratio=ratio, classic=True, mixup_alpha=mixup_alpha,
                reweight="drw", against="classic + mixup + DRW"),
        ]  # fmt: skip
        if name in techniques:
            arms += [
                Arm(f"classic + {name} balance teacher", source, mode="balance", classic=True, teacher="soft", temperature=2.0,
                    against=f"classic + {name} balance"),
                Arm(f"classic + {name} balance filtered", source, mode="balance", classic=True, drop_wrong=0.8, drop_easy=0.2,
                    against=f"classic + {name} balance"),
            ]  # fmt: skip
    return arms


#: the automatic policies of :func:`baseline_arms`, by the short name their arms carry
POLICY_NAMES = {"classic": None, "TA": "trivial", "RA": "randaugment"}
#: batch-level mixing of :func:`baseline_arms` and :func:`synthetic_arms`: (mix_mode, alpha); half of each batch
MIXES = {"mixup": ("mixup", 0.4), "cutmix": ("cutmix", 1.0)}


def policy_arm(policy: str = "classic", *, label_smoothing: float = 0.0) -> Arm:
    """Real data with flips and shifts (``"classic"``), plus TrivialAugment (``"TA"``) or RandAugment (``"RA"``)."""
    if policy not in POLICY_NAMES:
        raise ValueError(f"unknown policy {policy!r}; choose from {list(POLICY_NAMES)}")
    name = "real + classic" + ("" if policy == "classic" else f" + {policy}")
    if label_smoothing:
        name += f" + LS {label_smoothing:g}"
    return Arm(name, classic=True, policy=POLICY_NAMES[policy], label_smoothing=label_smoothing,  # type: ignore[arg-type]
               against=None if name == "real + classic" else "real + classic")  # fmt: skip


def mixed_arm(base: Arm, name: str, source: ArmSource, mix: str, *, ratio: float = 0.5, against: str | None = None) -> Arm:
    """``base`` (its augmentation and loss) with ``ratio`` of each batch mixed (``mix``: ``"mixup"`` or
    ``"cutmix"``) with samples of ``source`` (``real_copies``: the real-only control)."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; choose from {list(MIXES)}")
    mode, alpha = MIXES[mix]
    return Arm(f"{base.name} + {name} {mix}", source, ratio=ratio, classic=base.classic, policy=base.policy,
               label_smoothing=base.label_smoothing, mix_alpha=alpha, mix_mode=mode,  # type: ignore[arg-type]
               against=against or base.name)  # fmt: skip


def baseline_arms(
    policies: Sequence[str] = tuple(POLICY_NAMES), mixes: Sequence[str | None] = (None, *MIXES), *, ratio: float = 0.5
) -> list[Arm]:
    """The real-only grid from which the strongest cheap baseline is chosen: each policy (flips and shifts;
    plus TrivialAugment; plus RandAugment) with no mixing, mixup or CutMix of half of each batch with other
    real images (the same :class:`~synthaug.transforms.SyntheticMix` path synthetic samples take, so
    each mixing baseline is also the real-copies control of the synthetic arm of the same name).
    Real only is added by :func:`~synthaug.evaluation.downstream`."""
    arms = []
    for policy in policies:
        base = policy_arm(policy)
        for mix in mixes:
            arms.append(base if mix is None else mixed_arm(base, "real copies", real_copies, mix, ratio=ratio))
    return arms


def synthetic_arms(
    name: str, source: ArmSource, base: Arm, *, mixes: Sequence[str] = tuple(MIXES), append: bool = True,
    ratio: float = 0.5, controls: bool = True,
) -> list[Arm]:
    """Synthetic samples on top of a real-only ``base`` (e.g. the strongest of :func:`baseline_arms`):
    appended at ``ratio`` and as the mixup / CutMix partners of ``ratio`` of each batch, each compared
    with ``base``; with ``controls``, the same mixing with real copies, so that a gain is credited to the
    samples only when it beats mixing real images the same way."""
    if base.source is not None or base.mix_alpha is not None:
        raise ValueError(f"the base arm {base.name!r} must be real-only without batch mixing (synthetic_arms adds the mixing)")
    arms = []
    if append:
        arms.append(Arm(f"{base.name} + {name}", source, ratio=ratio, classic=base.classic, policy=base.policy,
                        label_smoothing=base.label_smoothing, against=base.name))  # fmt: skip
    for mix in mixes:
        arms.append(mixed_arm(base, name, source, mix, ratio=ratio))
        if controls:
            arms.append(mixed_arm(base, "real copies", real_copies, mix, ratio=ratio))
    return arms
