"""Finite-difference gradient check for torchsde's test files (written for this harness)."""

import torch


def gradcheck(func, inputs, modules, eps=1e-6, atol=1e-5, rtol=1e-3, grad_inputs=False,
              gradgrad_inputs=False, grad_params=False, gradgrad_params=False):
    """Compare autograd gradients of ``func(inputs, modules)`` (a scalar) with central
    differences, w.r.t. the inputs (``grad_inputs``) and/or the modules' parameters."""
    inputs = (inputs,) if torch.is_tensor(inputs) else tuple(inputs)
    modules = (modules,) if isinstance(modules, torch.nn.Module) else tuple(modules)
    wrt = []
    if grad_inputs:
        wrt += [x for x in inputs if x.requires_grad]
    if grad_params:
        wrt += [p for m in modules for p in m.parameters() if p.requires_grad]
    if not wrt:
        return
    loss = func(inputs, modules)
    analytic = torch.autograd.grad(loss, wrt, allow_unused=True)
    analytic = torch.cat([(torch.zeros_like(w) if a is None else a).reshape(-1)
                          for a, w in zip(analytic, wrt, strict=True)])
    numeric = []
    with torch.no_grad():
        for w in wrt:
            flat = w.view(-1)
            for i in range(flat.numel()):
                orig = flat[i].item()
                flat[i] = orig + eps
                lp = float(func(inputs, modules))
                flat[i] = orig - eps
                lm = float(func(inputs, modules))
                flat[i] = orig
                numeric.append((lp - lm) / (2 * eps))
    numeric = torch.tensor(numeric, dtype=analytic.dtype)
    torch.testing.assert_close(analytic, numeric, rtol=rtol, atol=atol)
