"""The yardstick classifier: networks, losses and a training recipe that converges.

The same networks, steps, batch size and seeds serve every arm of a comparison, so accuracy
differences come from the data alone. Used by the downstream benchmark, CAS, and the metrics'
domain features.
"""

from synthaug.classifier.losses import class_balanced_weights, cross_entropy, logit_adjustment
from synthaug.classifier.networks import SmallCNN, SmallResNet
from synthaug.classifier.training import (
    CLASSIFIERS,
    DEFAULT_STEPS,
    ClassifierModule,
    class_counts_of,
    make_classifier,
    train_classifier,
)
from synthaug.data.labeled import LabeledImages
from synthaug.inference import predict


def accuracy(model, data: LabeledImages, *, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``data``."""
    predictions = predict(model, data.images, batch_size=batch_size).argmax(1)
    return float((predictions == data.labels).double().mean())


__all__ = [
    "CLASSIFIERS",
    "DEFAULT_STEPS",
    "ClassifierModule",
    "SmallCNN",
    "SmallResNet",
    "accuracy",
    "class_balanced_weights",
    "class_counts_of",
    "cross_entropy",
    "logit_adjustment",
    "make_classifier",
    "predict",
    "train_classifier",
]
