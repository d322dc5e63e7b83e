"""optbook.RAdam (optbook/radam.py) against torch.optim.RAdam, and its formulas."""

from __future__ import annotations

import pytest
import torch
from hypothesis import strategies as st

import optbook

from twins import betas_st, decays, epss, foreach_grid, lrs, single_tensor_grid


@st.composite
def radam_hyper(draw):
    return dict(
        lr=draw(lrs),
        betas=draw(betas_st),
        eps=draw(epss),
        weight_decay=draw(decays),
        decoupled_weight_decay=draw(st.booleans()),
        maximize=draw(st.booleans()),
    )


test_radam_matches_torch = single_tensor_grid("RAdam", radam_hyper())
test_radam_foreach_matches_torch_foreach = foreach_grid("RAdam", radam_hyper(), torch_foreach=True)
# torch's own RAdam foreach path differs from its single-tensor path in the last
# bit (√(v/(1-β2^t)) there, √v/√(1-β2^t) here), so the foreach twin is held to
# torch's foreach path, bitwise.


def test_radam_first_steps_are_bias_corrected_momentum_sgd():
    """With β2 = 0.999, ρ_t <= 5 for t <= 5: RAdam's step is η m̂_t (no adaptivity),
    and from t = 6 on it is rectified; the threshold step is computed, not assumed."""
    first_adaptive = next(t for t in range(1, 100) if optbook.radam.radam_rho(float(t), 0.999)[1] > 5)
    assert first_adaptive == 6
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = optbook.RAdam([p], lr=0.1)
    m = torch.zeros(4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for t in range(1, first_adaptive):
        grad = torch.randn(4, generator=g, dtype=torch.float64) * 100.0
        before = p.detach().clone()
        p.grad = grad
        opt.step()
        m = 0.9 * m + 0.1 * grad
        torch.testing.assert_close(p.detach() - before, -0.1 * m / (1 - 0.9**t), rtol=1e-12, atol=0)


def test_radam_rectification_tends_to_one():
    rho_inf, rho_t = optbook.radam.radam_rho(1e6, 0.999)
    assert optbook.radam.radam_rectification(rho_t, rho_inf) == pytest.approx(1.0, abs=1e-12)
    rho_inf, rho_t = optbook.radam.radam_rho(10.0, 0.999)
    assert 0 < optbook.radam.radam_rectification(rho_t, rho_inf) < 0.5
