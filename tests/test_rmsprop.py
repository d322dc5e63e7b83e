"""optbook.RMSprop (optbook/rmsprop.py) against torch.optim.RMSprop: the hypothesis
grid on both code paths.
"""

from __future__ import annotations

from hypothesis import strategies as st

from twins import decays, epss, foreach_grid, lrs, single_tensor_grid, unit


@st.composite
def rmsprop_hyper(draw):
    return dict(
        lr=draw(lrs),
        alpha=draw(unit),
        eps=draw(epss),
        weight_decay=draw(decays),
        momentum=draw(st.sampled_from([0.0, 0.5, 0.9])),
        centered=draw(st.booleans()),
        maximize=draw(st.booleans()),
    )


test_rmsprop_matches_torch = single_tensor_grid("RMSprop", rmsprop_hyper())
test_rmsprop_foreach_matches_torch_foreach = foreach_grid("RMSprop", rmsprop_hyper(), torch_foreach=True)
# On the CPU torch's two paths agree bit for bit, so the foreach twin also equals
# torch's single-tensor path: the tightest tolerance, zero.
test_rmsprop_foreach_matches_torch_single_tensor_on_cpu = foreach_grid(
    "RMSprop", rmsprop_hyper(), torch_foreach=False
)
