"""optbook.Adamax (optbook/adamax.py) against torch.optim.Adamax, and its step bound."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

import optbook

from twins import betas_st, decays, epss, foreach_grid, lrs, single_tensor_grid


@st.composite
def adamax_hyper(draw):
    return dict(
        lr=draw(lrs),
        betas=draw(betas_st),
        eps=draw(epss),
        weight_decay=draw(decays),
        maximize=draw(st.booleans()),
    )


test_adamax_matches_torch = single_tensor_grid("Adamax", adamax_hyper())
test_adamax_foreach_matches_torch_foreach = foreach_grid("Adamax", adamax_hyper(), torch_foreach=True)
# On the CPU torch's two Adamax paths agree bit for bit, so the foreach twin also
# equals torch's single-tensor path: the tightest tolerance, zero.
test_adamax_foreach_matches_torch_single_tensor_on_cpu = foreach_grid(
    "Adamax", adamax_hyper(), torch_foreach=False
)


def test_adamax_step_is_bounded():
    """|Δθ_t| <= η (1-β1) Σ_{j<t} (β1/β2)^j / (1-β1^t), since |g_{t-j}| <= u_t / β2^j;
    for β1 <= β2 this is about η (Kingma & Ba, §7.1).  Gradients span 6 decades."""
    lr, beta1, beta2 = 0.01, 0.9, 0.999
    p = torch.zeros(100, dtype=torch.float64, requires_grad=True)
    opt = optbook.Adamax([p], lr=lr, betas=(beta1, beta2))
    g = torch.Generator().manual_seed(1)
    scales = torch.logspace(-3, 3, 100, dtype=torch.float64)
    for t in range(1, 51):
        before = p.detach().clone()
        p.grad = torch.randn(100, generator=g, dtype=torch.float64) * scales
        opt.step()
        bound = lr * (1 - beta1) * sum((beta1 / beta2) ** j for j in range(t)) / (1 - beta1**t)
        step = (p.detach() - before).abs().max().item()
        assert step <= bound * (1 + 1e-12)
        assert step > 0.2 * lr  # the bound is not vacuous
