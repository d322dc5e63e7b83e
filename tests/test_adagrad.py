"""optbook.Adagrad (optbook/adagrad.py) against torch.optim.Adagrad: the hypothesis
grid on both code paths.
"""

from __future__ import annotations

from hypothesis import strategies as st

from twins import decays, epss, foreach_grid, lrs, single_tensor_grid


@st.composite
def adagrad_hyper(draw):
    return dict(
        lr=draw(lrs),
        lr_decay=draw(st.sampled_from([0.0, 1e-3, 0.1])),
        weight_decay=draw(decays),
        initial_accumulator_value=draw(st.sampled_from([0.0, 0.1, 1.0])),
        eps=draw(epss),
        maximize=draw(st.booleans()),
    )


test_adagrad_matches_torch = single_tensor_grid("Adagrad", adagrad_hyper())
test_adagrad_foreach_matches_torch_foreach = foreach_grid("Adagrad", adagrad_hyper(), torch_foreach=True)
# On the CPU torch's two paths agree bit for bit, so the foreach twin also equals
# torch's single-tensor path: the tightest tolerance, zero.
test_adagrad_foreach_matches_torch_single_tensor_on_cpu = foreach_grid(
    "Adagrad", adagrad_hyper(), torch_foreach=False
)
