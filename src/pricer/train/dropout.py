"""Dropout whose mask is cheap to draw on a CPU.

Written by hand because torch's CPU dropout draws every mask element from its Mersenne Twister
one at a time: in the head's cached second epoch that was 27.5 % of the CPU time (36 masks of
16 x 128 x 576 a step; docs/measurements/profile_head_step_before_cpu_amd_epyc.json).
`FastDropout` keeps torch's mask law (keep an element where a float32 uniform number is >= p,
scale the kept by 1 / (1 - p)) and draws the numbers from numpy's SFC64 generator, several times
faster, seeded by one draw of torch's generator per call, so `torch.manual_seed` (and a resumed
run's restored RNG state) fixes every mask. On other devices, outside training or at p = 0 it is
torch's own dropout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FastDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        seed = int(torch.randint(0, 2 ** 62, ()).item())
        uniform = np.random.Generator(np.random.SFC64(seed)).random(x.numel(), dtype=np.float32)
        keep = torch.from_numpy(uniform >= self.p).view(x.shape)
        return x * keep * (1.0 / (1.0 - self.p))


def use_fast_dropout(model: nn.Module) -> int:
    """Turn every `nn.Dropout` of `model` (PEFT's LoRA dropouts, the head's) into a FastDropout
    of the same p, in place; returns how many."""
    swapped = 0
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = FastDropout
            swapped += 1
    return swapped
