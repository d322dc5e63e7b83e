"""optbook.Adam and optbook.AdamW (optbook/adam.py) against their torch.optim twins:
the hypothesis grid on both code paths, and what is particular to Adam.
"""

from __future__ import annotations

from hypothesis import strategies as st

from twins import decays, epss, foreach_grid, lrs, single_tensor_grid, unit


@st.composite
def adam_hyper(draw, decoupled=None):
    betas = draw(
        st.sampled_from([(0.0, 0.0), (0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.9, 0.0)])
        | st.tuples(unit, unit)
    )
    hyper = dict(
        lr=draw(lrs),
        betas=betas,
        eps=draw(epss),
        weight_decay=draw(decays),
        amsgrad=draw(st.booleans()),
        maximize=draw(st.booleans()),
    )
    if decoupled is None:
        hyper["decoupled_weight_decay"] = draw(st.booleans())
    return hyper


test_adam_matches_torch = single_tensor_grid("Adam", adam_hyper())
test_adam_foreach_matches_torch_foreach = foreach_grid("Adam", adam_hyper(), torch_foreach=True)
# On the CPU torch's two paths agree bit for bit, so the foreach twin also equals
# torch's single-tensor path: the tightest tolerance, zero.
test_adam_foreach_matches_torch_single_tensor_on_cpu = foreach_grid("Adam", adam_hyper(), torch_foreach=False)


def adamw_hyper():
    return adam_hyper(decoupled=False)


test_adamw_matches_torch = single_tensor_grid("AdamW", adamw_hyper())
test_adamw_foreach_matches_torch_foreach = foreach_grid("AdamW", adamw_hyper(), torch_foreach=True)
# On the CPU torch's two paths agree bit for bit, so the foreach twin also equals
# torch's single-tensor path: the tightest tolerance, zero.
test_adamw_foreach_matches_torch_single_tensor_on_cpu = foreach_grid(
    "AdamW", adamw_hyper(), torch_foreach=False
)
