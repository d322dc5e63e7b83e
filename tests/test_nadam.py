"""optbook.NAdam (optbook/nadam.py) against torch.optim.NAdam."""

from __future__ import annotations

import pytest
import torch
from hypothesis import strategies as st

import optbook

from twins import betas_st, decays, epss, foreach_grid, lrs, single_tensor_grid


@st.composite
def nadam_hyper(draw):
    return dict(
        lr=draw(lrs),
        betas=draw(betas_st),
        eps=draw(epss),
        weight_decay=draw(decays),
        momentum_decay=draw(st.sampled_from([0.0, 4e-3, 0.1, 1.0])),
        decoupled_weight_decay=draw(st.booleans()),
        maximize=draw(st.booleans()),
    )


test_nadam_matches_torch = single_tensor_grid("NAdam", nadam_hyper())
test_nadam_foreach_matches_torch_foreach = foreach_grid("NAdam", nadam_hyper(), torch_foreach=True)
# torch's own NAdam foreach path differs from its single-tensor path in the last
# bit (√(v/(1-β2^t)) there, √v/√(1-β2^t) here), so the foreach twin is held to
# torch's foreach path, bitwise.


def test_nadam_state_names_include_mu_product():
    p = torch.zeros(3, requires_grad=True)
    opt = optbook.NAdam([p], momentum_decay=0.5)
    p.grad = torch.ones(3)
    opt.step()
    opt.step()  # noqa: E702
    state = opt.state[p]
    assert list(state) == ["step", "mu_product", "exp_avg", "exp_avg_sq"]
    mu1, mu2 = optbook.nadam.nadam_mu(1.0, 0.9, 0.5), optbook.nadam.nadam_mu(2.0, 0.9, 0.5)
    assert state["mu_product"].item() == pytest.approx(mu1 * mu2, rel=1e-6)
