"""Adam and the per-epoch learning-rate schedules, without torch.optim.

torch.optim's Optimizer and Adam.step import torch._dynamo, about 1.3 CPU-s in every train, autoencoder and
probe job, for nothing these jobs use. The arithmetic here is torch's own, op for op and in the same order
(torch 2.14: `_single_tensor_adam`, `_fused_adam`, and the chainable forms of ExponentialLR and
CosineAnnealingLR), so weights and rates are bit-identical to torch.optim's (tests/test_optim.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


class Adam:
    """torch.optim.Adam(params, lr) without weight decay, amsgrad or maximize; `fused` as torch's fused=True.

    Unfused is torch's single-tensor path (its default on CPU; on CUDA torch would use its foreach kernels,
    the same formula in fewer launches). A parameter whose grad is None (frozen, or not in the loss) is
    skipped and its step count stays, as in torch. The step counts are float32 tensors as in torch, on the
    CPU unless fused, and `state_dict` has torch's layout, so a resume state written by torch.optim.Adam
    loads too.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, fused: bool = False):
        self.params, self.lr, self.fused = list(params), lr, fused
        self.state: dict[torch.Tensor, dict] = {}  # per parameter: step, exp_avg, exp_avg_sq

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        for p in params:
            if p not in self.state:
                self.state[p] = {
                    "step": torch.zeros((), dtype=torch.float32, device=self._step_device(p)),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        if self.fused:
            self._fused_step(params)
        else:
            for p in params:
                self._single_step(p)

    def _single_step(self, p: torch.Tensor) -> None:
        (beta1, beta2), state = BETAS, self.state[p]
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"].item(), state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(p.grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
        p.addcdiv_(exp_avg, denom, value=-step_size)

    def _fused_step(self, params: list[torch.Tensor]) -> None:
        """One call of the ATen kernel torch.optim.Adam(fused=True) calls (all parameters on one device)."""
        if not params:
            return
        states = [self.state[p] for p in params]
        steps = [state["step"] for state in states]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            [p.grad for p in params],
            [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states],
            [],
            steps,
            amsgrad=False,
            lr=self.lr,
            beta1=BETAS[0],
            beta2=BETAS[1],
            weight_decay=0.0,
            eps=EPS,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    def _step_device(self, p: torch.Tensor) -> torch.device:
        """Where a step count lives: on the CPU for the unfused step, which reads it (.item()) every step."""
        return p.device if self.fused else torch.device("cpu")

    def state_dict(self) -> dict:
        """The rate and the moments of each parameter that has stepped, by its position in `params`."""
        state = {i: self.state[p] for i, p in enumerate(self.params) if p in self.state}
        return {"state": state, "param_groups": [{"lr": self.lr}]}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["param_groups"][0]["lr"]
        self.state = {
            self.params[i]: {**s, "step": s["step"].to(self._step_device(self.params[i]))}
            for i, s in state["state"].items()
        }


def scheduled_lr(training: dict, lr: float, epoch: int) -> float:
    """The learning rate of `epoch` (1, 2, ...) from `lr`, the previous epoch's, per `training.schedule`.

    The paper's exponential decay (`gamma`), cosine annealing to `min_lr` over `max_epochs`, or constant
    (their code created a CosineAnnealingLR but never stepped it, so its rate stayed at `lr`). Cosine is
    torch's recursive form, which differs from the closed form in the last bits; a run never reaches the
    epochs past `max_epochs` where torch takes another branch.
    """
    if training["schedule"] == "constant":
        return lr
    if training["schedule"] == "cosine":
        t_max, eta_min = training["max_epochs"], training["min_lr"]
        return (1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1) / t_max)) * (
            lr - eta_min
        ) + eta_min
    return lr * training["gamma"]
