"""optbook.SGD (optbook/sgd.py) against torch.optim.SGD: the hypothesis grid on
both code paths, and what is particular to SGD.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from conftest import assert_bitwise_equal, lockstep, make_params
from twins import decays, foreach_grid, foreach_twins, lrs, single_tensor_grid, unit


@st.composite
def sgd_hyper(draw):
    momentum = draw(unit)
    dampening = draw(st.sampled_from([0.0, 0.1, 0.5]))
    nesterov = momentum > 0 and dampening == 0 and draw(st.booleans())
    return dict(
        lr=draw(lrs),
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=draw(decays),
        maximize=draw(st.booleans()),
    )


test_sgd_matches_torch = single_tensor_grid("SGD", sgd_hyper())
test_sgd_foreach_matches_torch_foreach = foreach_grid("SGD", sgd_hyper(), torch_foreach=True)
# On the CPU torch's two paths agree bit for bit, so the foreach twin also equals
# torch's single-tensor path: the tightest tolerance, zero.
test_sgd_foreach_matches_torch_single_tensor_on_cpu = foreach_grid("SGD", sgd_hyper(), torch_foreach=False)


def test_sgd_nesterov_foreach_updates_grad_in_place_like_torch():
    """torch's multi-tensor SGD with Nesterov (no weight decay, no maximize) adds μ m_t
    into p.grad in place, which saves a model-sized temporary; optbook does the same,
    so p.grad after the step is torch's too, bit for bit."""
    ours, theirs = make_params(torch.float32, seed=7, frozen=False)
    o, t = foreach_twins("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), ours, theirs)
    lockstep(o, t, ours, theirs, steps=3, seed=7, dtype=torch.float32)
    for params, opt in ((ours, o), (theirs, t)):
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
    assert not all(torch.equal(p.grad, torch.ones_like(p)) for p in theirs), \
        "torch no longer modifies p.grad: optbook.sgd.sgd_foreach_update should not either"
    for a, b in zip(ours, theirs):
        assert_bitwise_equal(a.grad, b.grad, "p.grad")
        assert_bitwise_equal(a.detach(), b.detach())
