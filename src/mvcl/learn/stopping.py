"""Early stopping on a validation loss, shared by the contrastive heads and the probes."""

from __future__ import annotations

import math

from torch import nn


class EarlyStopping:
    """Keeps a copy of the weights of the best validation loss so far; says when to stop.

    `step` returns True once `patience` epochs in a row have not improved on the best loss (the study: stop
    after 3 epochs without validation gain). A NaN loss never counts as an improvement.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.stale = 0

    def step(self, epoch: int, loss: float, model: nn.Module) -> bool:
        if loss < self.best_loss:
            self.best_loss, self.best_epoch, self.stale = loss, epoch, 0
            self.best_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience
