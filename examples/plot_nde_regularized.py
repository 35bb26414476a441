"""
Regularized neural ODE: fewer solver steps for the same fit
===========================================================

Train the spiral neural ODE of Pal et al. (ICML 2021), :math:`\\dot u = f_\\theta(u)` with
:math:`f_\\theta(u) = W_2\\tanh(W_1 u^3 + b_1) + b_2`, on 30 observations of the true spiral
:math:`\\dot u = A u^3`, and add the adaptive solver's own error estimates to the loss
(:class:`sciml.nde.ErrorRegularizer`, :math:`\\lambda\\sum_j E_j |h_j|`). A larger
:math:`\\lambda` buys fewer function evaluations (NFE) of the trained model at prediction time,
at some cost in fit: the Pareto plot below. All solves use :func:`sciml.nde.odeint` (dopri5,
rtol = atol = 1e-6, float64), and the penalty is backpropagated through the solver.

This is one seed of a short schedule (a shared 60-iteration warm-up, then 30 iterations per
:math:`\\lambda`); ``examples/nde_spiral.py`` runs the documented study (several seeds,
stiffness regularization, RNODE).

Measured: 29 s of CPU time (``OMP_NUM_THREADS=2``, 4 trainings of 30 iterations after the
warm-up; the wall time was longer on a machine shared with other jobs). In that run,
λ = 0.03 cut the test NFE from 326 to 290 at a test MSE of 8.9e-2 against vanilla's 6.4e-2;
λ = 0.01 changed neither: a short schedule shows the trade-off, not the documented numbers.
"""

# %%
# Data and model
# --------------
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from sciml.nde import ErrorRegularizer, Recorder, odeint
from sciml_inverse import FitOptions, fit

t_start = time.perf_counter()
F64 = torch.float64
A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=F64)
u0 = torch.tensor([[2.0, 0.0]], dtype=F64)
t_train = torch.linspace(0.0, 1.5, 30, dtype=F64)
t_test = torch.sort(1.5 * torch.rand(100, generator=torch.Generator().manual_seed(1),
                                     dtype=F64)).values
t_test = torch.cat([t_train[:1], t_test])
with torch.no_grad():
    y_train = odeint(lambda t, u: (u**3) @ A.T, u0, t_train, rtol=1e-10, atol=1e-10)
    y_test = odeint(lambda t, u: (u**3) @ A.T, u0, t_test, rtol=1e-10, atol=1e-10)


class Spiral(nn.Module):
    def __init__(self, hidden: int = 50) -> None:
        super().__init__()
        self.l1 = nn.Linear(2, hidden, dtype=F64)
        self.l2 = nn.Linear(hidden, 2, dtype=F64)

    def forward(self, t, u):
        return self.l2(torch.tanh(self.l1(u**3)))


def train(model, iters, lr, lam):
    """Adam on MSE + lam * sum_j E_j |h_j| (lam = 0: vanilla), on the library's training loop
    :func:`sciml_inverse.fit`."""
    penalty = ErrorRegularizer(lam) if lam > 0 else None

    def loss_fn(model, _step):
        rec = Recorder()
        pred = odeint(model, u0, t_train, rtol=1e-6, atol=1e-6, recorder=rec)
        loss = (pred - y_train).pow(2).mean()
        return loss if penalty is None else loss + penalty(rec.stats)

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    fit(loss_fn, model, opt, options=FitOptions(steps=iters, progress=False))
    return model


@torch.no_grad()
def test(model):
    """Test MSE at 100 random times and the NFE of that prediction."""
    rec = Recorder(stiffness=False)
    pred = odeint(model, u0, t_test, rtol=1e-6, atol=1e-6, recorder=rec,
                  options={"max_num_steps": 200_000})
    stats = rec.stats
    return float((pred - y_test).pow(2).mean()), stats.nfe


# %%
# A shared vanilla warm-up, then one run per regularization weight
# -----------------------------------------------------------------
torch.manual_seed(0)
warm = train(Spiral(), 60, 0.03, 0.0).state_dict()
results = {}
for lam in (0.0, 0.01, 0.03, 0.1):
    model = Spiral()
    model.load_state_dict(warm)
    t0 = time.perf_counter()
    results[lam] = test(train(model, 30, 0.01, lam))
    mse, nfe = results[lam]
    print(f"lambda {lam:<5g}: test MSE {mse:.2e}, NFE {nfe:4d} "
          f"({time.perf_counter() - t0:.1f} s)")

# %%
# The Pareto plot: each point is one trained model (its :math:`\lambda` is annotated).
fig, ax = plt.subplots(figsize=(5.5, 4))
lams = sorted(results)
ax.plot([results[lam][1] for lam in lams[1:]], [results[lam][0] for lam in lams[1:]], "o-",
        label="error-regularized (ER)")
for lam in lams[1:]:
    ax.annotate(f"λ = {lam:g}", (results[lam][1], results[lam][0]), fontsize=8,
                xytext=(4, 4), textcoords="offset points")
ax.plot([results[0.0][1]], [results[0.0][0]], "k*", ms=12, label="vanilla")
ax.set_xlabel("NFE at prediction (test times)")
ax.set_ylabel("test MSE")
ax.set_yscale("log")
ax.set_title("Spiral neural ODE: NFE vs loss")
ax.legend()
fig.tight_layout()
print(f"total: {time.perf_counter() - t_start:.1f} s")
