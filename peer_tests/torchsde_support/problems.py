"""SDE problems for torchsde's test files (written for this harness, not torchsde's code).

torchsde's source distribution ships ``tests/test_*.py`` but not the ``problems`` and ``utils``
modules they import; the harness installs these in their place. Each class is an ``nn.Module``
with ``noise_type``/``sde_type``, a drift ``f``, a diffusion ``g`` and a prior drift ``h`` (for
``logqp`` and ``names={"drift": "h"}``), built from the constructor arguments the tests pass.
"""

import torch
from torch import nn


def _mvp(g, v):
    return torch.bmm(g, v.unsqueeze(-1)).squeeze(-1)


class _SDE(nn.Module):
    noise_type = "diagonal"

    def __init__(self, d=3, m=None, sde_type="ito"):
        super().__init__()
        self.sde_type = sde_type
        self.d = d
        self.m = d if m is None else m

    def h(self, t, y):
        return -0.5 * y


class ExDiagonal(_SDE):
    """Geometric Brownian motion per coordinate: f = mu y, g = sigma y."""

    noise_type = "diagonal"

    def __init__(self, d=3, m=None, sde_type="ito"):
        super().__init__(d, m, sde_type)
        self.mu = nn.Parameter(torch.linspace(-0.4, 0.6, d))
        self.sigma = nn.Parameter(torch.linspace(0.3, 0.7, d))

    def f(self, t, y):
        return self.mu * y + 0.1 * torch.sin(t)

    def g(self, t, y):
        return self.sigma * y


class ExScalar(_SDE):
    """One Brownian motion shared by all coordinates: g = (sigma y)[..., None]."""

    noise_type = "scalar"

    def __init__(self, d=3, m=None, sde_type="ito"):
        super().__init__(d, 1, sde_type)
        self.mu = nn.Parameter(torch.linspace(-0.4, 0.6, d))
        self.sigma = nn.Parameter(torch.linspace(0.3, 0.7, d))

    def f(self, t, y):
        return self.mu * torch.tanh(y)

    def g(self, t, y):
        return (self.sigma * y).unsqueeze(-1)


class ExAdditive(_SDE):
    """State-independent diffusion matrix: g = sigma(t), shape (batch, d, m)."""

    noise_type = "additive"

    def __init__(self, d=3, m=2, sde_type="ito"):
        super().__init__(d, 2 if m is None else m, sde_type)
        self.mu = nn.Parameter(torch.linspace(-0.4, 0.6, d))
        self.sigma = nn.Parameter(torch.linspace(0.1, 0.5, d * self.m).reshape(d, self.m))

    def f(self, t, y):
        return self.mu * y

    def g(self, t, y):
        return (self.sigma * torch.cos(t)).expand(y.size(0), self.d, self.m)


class _Net(_SDE):
    def __init__(self, d=3, m=None, sde_type="ito", g_out=None):
        super().__init__(d, m, sde_type)
        gen = torch.Generator().manual_seed(1234)
        # small on purpose: torchsde's gradient checks difference every parameter
        self.f_net = nn.Sequential(nn.Linear(d + 1, d), nn.Tanh())
        self.g_net = nn.Linear(d + 1, g_out(d, self.m))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))

    def _ty(self, t, y):
        return torch.cat([t.expand(y.size(0), 1).to(y), y], dim=1)

    def f(self, t, y):
        return self.f_net(self._ty(t, y))


class NeuralDiagonal(_Net):
    noise_type = "diagonal"

    def __init__(self, d=3, m=None, sde_type="ito"):
        super().__init__(d, d, sde_type, g_out=lambda d, m: d)

    def g(self, t, y):
        return torch.sigmoid(self.g_net(self._ty(t, y)))


class NeuralScalar(_Net):
    noise_type = "scalar"

    def __init__(self, d=3, m=None, sde_type="ito"):
        super().__init__(d, 1, sde_type, g_out=lambda d, m: d)

    def g(self, t, y):
        return torch.sigmoid(self.g_net(self._ty(t, y))).unsqueeze(-1)


class NeuralAdditive(_Net):
    noise_type = "additive"

    def __init__(self, d=3, m=2, sde_type="ito"):
        super().__init__(d, 2 if m is None else m, sde_type, g_out=lambda d, m: d * m)

    def g(self, t, y):
        z = torch.zeros(y.size(0), self.d, dtype=y.dtype, device=y.device)
        return torch.sigmoid(self.g_net(self._ty(t, z))).reshape(-1, self.d, self.m)


class NeuralGeneral(_Net):
    noise_type = "general"

    def __init__(self, d=3, m=2, sde_type="ito"):
        super().__init__(d, 2 if m is None else m, sde_type, g_out=lambda d, m: d * m)

    def g(self, t, y):
        return torch.sigmoid(self.g_net(self._ty(t, y))).reshape(-1, self.d, self.m)


class _Basic(_SDE):
    noise_type = "diagonal"

    def __init__(self, d=10):
        super().__init__(d, d, "ito")
        self.a = nn.Parameter(torch.linspace(0.1, 0.5, d))
        self.b = nn.Parameter(torch.linspace(0.2, 0.4, d))


class BasicSDE1(_Basic):
    """Diffusion independent of the state."""

    def f(self, t, y):
        return -self.a * y

    def g(self, t, y):
        return self.b.expand_as(y) * torch.ones_like(y)


class BasicSDE2(_Basic):
    """Drift independent of the state, one parameter without gradient."""

    def __init__(self, d=10):
        super().__init__(d)
        self.b.requires_grad_(False)

    def f(self, t, y):
        return self.a.expand_as(y) * torch.ones_like(y)

    def g(self, t, y):
        return self.b * torch.sin(y)


class BasicSDE3(_Basic):
    """Drift without parameters."""

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return torch.sigmoid(self.a * y + self.b)


class BasicSDE4(_Basic):
    """Zero drift, parameters only in the diffusion."""

    def f(self, t, y):
        return torch.zeros_like(y)

    def g(self, t, y):
        return self.a * torch.cos(y) + self.b


class CustomNamesSDE(nn.Module):
    noise_type = "diagonal"
    sde_type = "ito"

    def forward(self, t, y):
        return -y

    def g(self, t, y):
        return 0.2 * y


class CustomNamesSDELogqp(CustomNamesSDE):
    def w(self, t, y):
        return -0.5 * y


class _Specialised(nn.Module):
    """General noise g(t, y) = y[..., None] * vector; variants define different method sets."""

    noise_type = "general"

    def __init__(self, sde_type, vector):
        super().__init__()
        self.sde_type = sde_type
        self.register_buffer("vector", vector)

    def _f(self, t, y):
        return -0.3 * y + torch.sin(t)

    def _g(self, t, y):
        return y.unsqueeze(-1) * self.vector

    def _g_prod(self, t, y, v):
        return _mvp(self._g(t, y), v)


class FGSDE(_Specialised):
    def f(self, t, y):
        return self._f(t, y)

    def g(self, t, y):
        return self._g(t, y)


class FAndGSDE(_Specialised):
    def f_and_g(self, t, y):
        return self._f(t, y), self._g(t, y)


class GProdSDE(_Specialised):
    def f(self, t, y):
        return self._f(t, y)

    def g_prod(self, t, y, v):
        return self._g_prod(t, y, v)


class FAndGProdSDE(_Specialised):
    def f_and_g_prod(self, t, y, v):
        return self._f(t, y), self._g_prod(t, y, v)


class FAndGGProdSDE1(_Specialised):
    def f_and_g(self, t, y):
        return self._f(t, y), self._g(t, y)

    def g_prod(self, t, y, v):
        return self._g_prod(t, y, v)


class FAndGGProdSDE2(_Specialised):
    def f(self, t, y):
        return self._f(t, y)

    def g(self, t, y):
        return self._g(t, y)

    def f_and_g_prod(self, t, y, v):
        return self._f(t, y), self._g_prod(t, y, v)
