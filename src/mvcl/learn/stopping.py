"""Early stopping on a validation loss, shared by the contrastive heads and the probes."""

from __future__ import annotations

import math

from torch import nn


class EarlyStopping:
    """Keeps a copy of the weights of the best validation loss so far; says when to stop.

    `step` returns True once `patience` epochs in a row have not improved on the best loss (the study: stop
    after 3 epochs without validation gain) and at least `min_epochs` epochs have run. The heads start on a
    plateau at the chance loss for several epochs; without `min_epochs` a small validation set ends such a
    run before it starts and reports untrained heads. A NaN loss never counts as an improvement.
    """

    def __init__(self, patience: int, min_epochs: int = 0) -> None:
        self.patience, self.min_epochs = patience, min_epochs
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
        return self.stale >= self.patience and epoch + 1 >= self.min_epochs

    def state_dict(self) -> dict:
        """What `load_state_dict` needs to continue exactly where this one stands (a resumed run)."""
        return {
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "stale": self.stale,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best_loss, self.best_epoch = state["best_loss"], state["best_epoch"]
        self.best_state, self.stale = state["best_state"], state["stale"]
