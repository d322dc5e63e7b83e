"""optbook.Adadelta (optbook/adadelta.py) against torch.optim.Adadelta."""

from __future__ import annotations

from hypothesis import strategies as st

from twins import decays, foreach_grid, single_tensor_grid


@st.composite
def adadelta_hyper(draw):
    return dict(
        lr=draw(st.sampled_from([0.0, 0.1, 1.0, 2.0]) | st.floats(1e-3, 2.0)),
        rho=draw(st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]) | st.floats(0.0, 1.0)),
        eps=draw(st.sampled_from([0.0, 1e-8, 1e-6, 1e-3]) | st.floats(1e-12, 1e-2)),
        weight_decay=draw(decays),
        maximize=draw(st.booleans()),
    )


test_adadelta_matches_torch = single_tensor_grid("Adadelta", adadelta_hyper())
test_adadelta_foreach_matches_torch_foreach = foreach_grid("Adadelta", adadelta_hyper(), torch_foreach=True)
# On the CPU torch's two Adadelta paths agree bit for bit, so the foreach twin also
# equals torch's single-tensor path: the tightest tolerance, zero.
test_adadelta_foreach_matches_torch_single_tensor_on_cpu = foreach_grid(
    "Adadelta", adadelta_hyper(), torch_foreach=False
)
