"""What synthaug's long jobs show a person: one progress display per job, and Lightning kept quiet.

Lightning announces its hardware and tips at ``INFO`` level each time a ``Trainer`` is made; a
study makes hundreds. :func:`quiet_lightning` raises Lightning's loggers to ``WARNING`` for the
duration of a library call (warnings and errors still show). :func:`progress_callback` picks the
display: a tqdm bar on a terminal, or a line every tenth of the run when stderr is a pipe or a
file, where a carriage-return bar would write thousands of lines. Both go to stderr, so the
output of a command (its tables) stays clean on stdout.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero")


@contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Lightning's info messages (GPU/TPU banner, tips, "Trainer.fit stopped") off inside the block."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Lightning 2.6 calling a torch.utils._pytree API that torch deprecated: not the user's to fix.
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class _StderrBar(TQDMProgressBar):
    """Lightning's tqdm bar, on stderr."""

    def init_train_tqdm(self) -> Any:
        return Tqdm(desc=self.train_description, position=2 * self.process_position, disable=self.is_disabled, leave=True,
                    dynamic_ncols=True, file=sys.stderr, smoothing=0, bar_format=self.BAR_FORMAT)  # fmt: skip

    def init_predict_tqdm(self) -> Any:
        return Tqdm(desc=self.predict_description, position=2 * self.process_position, disable=self.is_disabled,
                    leave=True, dynamic_ncols=True, file=sys.stderr, smoothing=0, bar_format=self.BAR_FORMAT)  # fmt: skip


class LineProgress(Callback):
    """A line per ``every`` of the run (``step 300/2000 (15%) loss 0.123, 21 s``) on ``stream``."""

    def __init__(self, description: str = "training", *, every: float = 0.1, stream: TextIO | None = None) -> None:
        self.description, self.every, self.stream = description, every, stream
        self._start, self._next = 0.0, 0.0

    def _total(self, trainer: L.Trainer) -> int:
        return int(trainer.max_steps) if trainer.max_steps and trainer.max_steps > 0 else int(trainer.estimated_stepping_batches)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._next = time.perf_counter(), trainer.global_step + self.every * self._total(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        total = self._total(trainer)
        step = trainer.global_step
        if not trainer.is_global_zero or (step < self._next and step < total):
            return
        self._next = step + self.every * total
        loss = trainer.callback_metrics.get("train/loss")
        loss_text = f" loss {float(loss):.4g}" if loss is not None else ""
        # the display the caller asked for (enable_progress_bar), written where tqdm's bar would go; not a log record
        stream = self.stream or sys.stderr
        stream.write(f"{self.description}: step {step}/{total} ({100 * step / max(total, 1):.0f}%){loss_text}, "
                     f"{time.perf_counter() - self._start:.0f} s\n")  # fmt: skip
        stream.flush()


def progress_callback(description: str = "training") -> Callback:
    """A tqdm bar on stderr when it is a terminal, else :class:`LineProgress`."""
    return _StderrBar() if sys.stderr.isatty() else LineProgress(description)
