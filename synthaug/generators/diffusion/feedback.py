"""Classifier-feedback guidance: steer each sample to where a real-trained classifier is unsure.

Askari-Hemmat et al. 2023, "Feedback-guided data synthesis for imbalanced classification"
(https://arxiv.org/abs/2310.00158; the authors' code: facebookresearch/Feedback-guided-Data-Synthesis).
At every solver step the classifier reads the clean-image estimate ``x0_hat(x_t)`` and a criterion
of its prediction is pushed *up* along its gradient with respect to ``x_t`` (through the denoiser):

- ``"entropy"``: the entropy of the classifier's prediction (the paper's best criterion on ImageNet-LT);
- ``"loss"``: the cross-entropy of the sample's own class (hard samples of that class).

The class term stays: the denoiser is still conditioned on the class (with classifier-free guidance),
and the feedback only bends its noise estimate, as classifier guidance does (Dhariwal & Nichol 2021):
``eps <- eps - scale * |eps| * g / |g|`` per sample, with ``g`` the criterion's gradient. As in the
authors' code the gradient is normalised, so ``scale`` means the same for any classifier: 0.1 bends the
noise estimate by a tenth of its norm at every step. The clean-image estimate follows from the bent
noise estimate, is clipped to ``[-1, 1]`` and the noise estimate re-derived from it, as without feedback.

The classifier is any ``nn.Module`` (or callable) taking float images in ``[-1, 1]`` and returning logits;
this module imports nothing of ``synthaug.classifier``. It runs in eval mode while sampling (its mode is
restored after), on its own device, and gradients are taken with ``torch.autograd.grad`` with respect to
the noisy images only, so no parameter of the generator or the classifier ever gets a ``.grad``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthaug.generators.base import module_sha256

Criterion = Literal["entropy", "loss"]
CRITERIA: tuple[str, ...] = ("entropy", "loss")
#: the sampling options feedback adds to a diffusion model, with their defaults (no feedback)
FEEDBACK_DEFAULTS: dict[str, Any] = {"feedback": None, "feedback_scale": 0.05, "feedback_criterion": "entropy"}
#: ``predict(x, t, labels, guidance, clip=False) -> (x0, eps)``: the denoiser's estimates at ``x_t``
Predictor = Callable[..., tuple[Tensor, Tensor]]


def check_feedback(feedback: Any, scale: Any, criterion: Any) -> None:
    """Refuse a feedback classifier that is not callable, a negative or non-finite scale, an unknown criterion."""
    if feedback is not None and not callable(feedback):
        raise ValueError(
            f"feedback must be a classifier (an nn.Module or callable taking images in [-1, 1] and returning logits), "
            f"got {type(feedback).__name__} {feedback!r:.60}; from the command line, use the Python API"
        )
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
        raise ValueError(f"feedback_scale must be a finite number >= 0 (0: no feedback, 0.05: the default), got {scale!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"feedback_criterion must be one of {list(CRITERIA)}, got {criterion!r}")


def is_active(options: Mapping[str, Any]) -> bool:
    """Whether resolved sampling options ask for feedback (a classifier and a scale above 0)."""
    return options.get("feedback") is not None and options.get("feedback_scale", 0) != 0


def feedback_record(options: Mapping[str, Any]) -> dict[str, Any]:
    """Resolved sampling options as JSON values for a bank's manifest or a source's fingerprint.

    Without feedback (no classifier, or scale 0, which samples the same images) the feedback options are
    left out, so records made before feedback existed stay valid; with it, the classifier is recorded as
    its class name and the sha256 of its weights (:func:`module_sha256`), not as the object.
    """
    check_feedback(options.get("feedback"), options.get("feedback_scale", 0), options.get("feedback_criterion", "entropy"))
    if not is_active(options):
        return {k: v for k, v in options.items() if k not in FEEDBACK_DEFAULTS}
    classifier = options["feedback"]
    if not isinstance(classifier, nn.Module):
        raise ValueError(
            f"feedback {type(classifier).__name__} cannot be recorded (a bank's manifest, a source's fingerprint): "
            "pass an nn.Module, whose weights are fingerprinted"
        )
    kind = type(classifier)
    return {**options, "feedback": {"class": f"{kind.__module__}.{kind.__qualname__}", "sha256": module_sha256(classifier)}}


def criterion_values(logits: Tensor, labels: Tensor, criterion: Criterion) -> Tensor:
    """The criterion per sample ``(B,)``: the prediction's entropy, or the cross-entropy of ``labels``."""
    if criterion == "entropy":
        log_p = logits.float().log_softmax(dim=1)
        return -(log_p.exp() * log_p).sum(dim=1)
    if criterion == "loss":
        return F.cross_entropy(logits.float(), labels, reduction="none")
    raise ValueError(f"feedback_criterion must be one of {list(CRITERIA)}, got {criterion!r}")


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """``model`` in eval mode (no dropout draws, BatchNorm on its running statistics), each submodule's
    mode restored after; a callable that is not an ``nn.Module`` is left alone."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _clip_straight_through(x0: Tensor) -> Tensor:
    """``x0`` clipped to ``[-1, 1]`` in value, unclipped in gradient: the classifier sees valid images
    while the pixels outside the range, common early in sampling, still pass the gradient on."""
    return x0 + (x0.clamp(-1.0, 1.0) - x0).detach()


class FeedbackGuidance:
    """The feedback term of one ``sample`` call: wraps the denoiser's prediction at every solver step.

    Example:
        >>> import torch
        >>> from synthaug.generators import create
        >>> ddpm = create("ddpm", num_classes=3, image_shape=(1, 8, 8), base_channels=8, timesteps=50)
        >>> classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> ddpm.sample([0, 2], steps=3, feedback=classifier, feedback_scale=0.1,
        ...             generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, classifier: Callable[[Tensor], Tensor], *, scale: float, criterion: Criterion, num_classes: int,
                 alpha_sigma: Callable[[Tensor], tuple[Tensor, Tensor]], predict: Predictor) -> None:  # fmt: skip
        check_feedback(classifier, scale, criterion)
        self.classifier, self.scale, self.criterion = classifier, float(scale), criterion
        self.num_classes, self.alpha_sigma, self.predict = num_classes, alpha_sigma, predict

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, num_classes: int,
                     alpha_sigma: Callable[[Tensor], tuple[Tensor, Tensor]], predict: Predictor) -> FeedbackGuidance | None:  # fmt: skip
        """The guidance asked for by resolved sampling options, or None without feedback (then sampling is
        exactly as if the options were absent)."""
        check_feedback(options.get("feedback"), options.get("feedback_scale", 0), options.get("feedback_criterion", "entropy"))
        if not is_active(options):
            return None
        return cls(options["feedback"], scale=options["feedback_scale"], criterion=options["feedback_criterion"],
                   num_classes=num_classes, alpha_sigma=alpha_sigma, predict=predict)  # fmt: skip

    def _device(self) -> torch.device | None:
        if isinstance(self.classifier, nn.Module):
            first = next(self.classifier.parameters(), None)
            return first.device if first is not None else None
        return None

    def gradient(self, x: Tensor, t: int, labels: Tensor, guidance: float) -> tuple[Tensor, Tensor, Tensor]:
        """The denoiser's unclipped ``(x0, eps)`` at ``x`` and the criterion's gradient with respect to ``x``."""
        # Sampling runs under no_grad, and a bank's Lightning predict loop under inference mode: leave both here;
        # clones are ordinary tensors that autograd may record.
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            labels = labels.clone()
            x0, eps = self.predict(x, t, labels, guidance, clip=False)
            device = self._device() or x0.device
            logits = self.classifier(_clip_straight_through(x0).to(device))
            if not isinstance(logits, Tensor) or logits.ndim != 2 or len(logits) != len(x):
                shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                raise ValueError(f"the feedback classifier must return logits of shape ({len(x)}, {self.num_classes}), got {shape}")
            if logits.shape[1] != self.num_classes:
                raise ValueError(
                    f"the feedback classifier gives {logits.shape[1]} logits per image but the generator has {self.num_classes} "
                    "classes; use a classifier trained on the generator's classes"
                )
            values = criterion_values(logits, labels.to(logits.device), self.criterion)
            (grad,) = torch.autograd.grad(values.sum(), x)
        return x0.detach(), eps.detach(), grad

    def guide(self, x: Tensor, t: int, labels: Tensor, guidance: float = 1.0) -> tuple[Tensor, Tensor]:
        """The clean-image and noise estimates at ``x_t`` with the feedback term, the former clipped to ``[-1, 1]``."""
        with evaluating(self.classifier):
            x0, eps, grad = self.gradient(x, t, labels, guidance)
        alpha, sigma = (v.to(x.dtype).view(-1, 1, 1, 1) for v in self.alpha_sigma(torch.full((len(x),), t, device=x.device)))
        # Per sample, so that each sample depends on its own noise only (a list of generators stays exact).
        direction = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)  # (B, C, H, W), unit norm
        eps = eps - self.scale * eps.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * direction
        x0 = ((x - sigma * eps) / alpha).clamp(-1.0, 1.0)
        return x0, (x - alpha * x0) / sigma
