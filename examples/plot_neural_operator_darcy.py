"""
A neural operator for Darcy flow: coefficient field, prediction and error
=========================================================================

Learn the solution operator :math:`a \\mapsto u` of :math:`-\\nabla\\cdot(a\\nabla u) = 10` on
:math:`[0,1]^2`, :math:`u = 0` on the boundary, with a supervised MultiONet (Zang &
Koutsourelakis 2025) and a CNN encoder of the coefficient. The data come from
:func:`sciml.pde.generate_darcy` (smooth log-normal coefficients, 29 x 29 nodes, finite
volumes). This is a CPU-sized run (100 training fields, 30 epochs): its error is several times
that of the documented runs (1000 fields, hundreds of epochs;
``examples/darcy_neural_operators.py`` and the guide's tables).

Cost: 120 finite-volume solves and 30 epochs of 4 mini-batches; see the running time at the
bottom of this page (it was not measured on an idle machine).
"""

# %%
# Data and model
# --------------
import time

import matplotlib.pyplot as plt
import torch

from sciml.neural_operators import (
    CNNEncoder,
    MultiONet,
    SiLU,
    SiLUSin,
    SupervisedObjective,
    TrainOptions,
    evaluate,
    fit,
)
from sciml.pde import generate_darcy

t_start = time.perf_counter()
GRID, N_TRAIN, N_VAL, N_TEST = 29, 100, 10, 10
data = generate_darcy("smooth", N_TRAIN + N_VAL + N_TEST, GRID, seed=0, progress=False)
a, u, x = data.to_torch(torch.float32)  # (B, 29, 29), (B, 29, 29), nodes (841, 2)
train = (a[:N_TRAIN], u[:N_TRAIN])
val = (a[N_TRAIN:N_TRAIN + N_VAL], u[N_TRAIN:N_TRAIN + N_VAL], x)
a_test, u_test = a[-N_TEST:], u[-N_TEST:]
print(f"data: {time.perf_counter() - t_start:.1f} s")

torch.manual_seed(0)
encoder = CNNEncoder(GRID, channels=(32, 64), hidden=(), out_size=128)
encoder.fit_normalization(train[0])
model = MultiONet(2, 128, [100] * 5, [100] * 5, activation_trunk=SiLUSin(),
                  activation_branch=SiLU(), sum_layers=4, encoder=encoder)
print("parameters:", model.n_parameters())

# %%
# Training
# --------
# :func:`sciml.neural_operators.fit` keeps the weights of the best validation epoch.
t0 = time.perf_counter()
result = fit(model, SupervisedObjective(x), train, TrainOptions(epochs=30, batch_size=25, lr=2e-3,
                                                                 step_size=10, gamma=0.5),
             validation=val, progress=False)
err = evaluate(model, a_test, u_test, x)
print(f"training: {time.perf_counter() - t0:.1f} s, best validation epoch {result.best_epoch}")
print(f"test relative L2 error: mean {float(err.mean()):.4f}, max {float(err.max()):.4f}")

# %%
# One test field: the coefficient, the reference solution, the prediction and the error.
with torch.no_grad():
    pred = model(a_test[:1], x).reshape(GRID, GRID)
ref = u_test[0]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
panels = [(a_test[0], "coefficient a", "viridis"), (ref, "reference u (finite volumes)", "magma"),
          (pred, f"MultiONet, rel. L2 {float(err[0]):.3f}", "magma"),
          ((pred - ref).abs(), "|error|", "inferno")]
for ax, (im, title, cmap) in zip(axes, panels, strict=True):
    kw = dict(vmin=float(ref.min()), vmax=float(ref.max())) if cmap == "magma" else {}
    h = ax.imshow(im, cmap=cmap, origin="lower", extent=(0, 1, 0, 1), **kw)
    fig.colorbar(h, ax=ax, fraction=0.046)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
print(f"total: {time.perf_counter() - t_start:.1f} s")
