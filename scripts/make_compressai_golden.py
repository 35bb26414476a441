"""Produce ``tests/data/compressai_golden.pt``: reference outputs of CompressAI's mbt2018.

``inverse.vble`` re-implements CompressAI's ``JointAutoregressiveHierarchicalPriors`` (mbt2018)
without depending on it; ``tests/test_inverse_vble_cae.py`` loads the state dict saved here
into :class:`inverse.vble.CompressiveAutoencoder` and compares against the values CompressAI
computed. compressai is *not* a dependency of sciml-inverse (1.2.8 pins ``numpy<2`` and pulls
torch-geometric), so run this script once in a throwaway environment::

    python3 -m venv /tmp/cai
    /tmp/cai/bin/pip install torch==2.14.1 torchvision==0.29.1 "numpy<2" compressai==1.2.8
    /tmp/cai/bin/python scripts/make_compressai_golden.py [--out tests/data/compressai_golden.pt]

What is stored (all float32 on CPU, computed in float32):

* ``state_dict``: a tiny mbt2018 (3 channels — CompressAI's mbt2018 is RGB only —, N = 4,
  M = 6), seeded, with deterministically perturbed parameters so that likelihoods are
  non-trivial (spread-out latents, non-identity GDN, non-default factorized densities). It is
  saved *before* any forward pass, so the context convolution weights are not yet masked
  (CompressAI masks them in place during ``forward``; our model must mask them itself).
* ``x_uint8`` (2, 3, 64, 64): the 8-bit input image; the model sees ``x = x_uint8.float() / 255``
  (stored as uint8 to keep the file small; the float32 division is exact IEEE arithmetic);
* eval-mode ``model(x)`` — CompressAI's deterministic path: ``x_hat``, ``likelihoods_y``,
  ``likelihoods_z`` and ``bits`` = -sum log2 of both likelihoods per image;
* the continuous path (no noise, no rounding, as ``latent_bits``): ``y = g_a(x)``,
  ``z = h_a(y)``, ``cont_likelihoods_z = entropy_bottleneck._likelihood(z)`` floored at 1e-9,
  ``cont_likelihoods_y = gaussian_conditional._likelihood(y, scales, means)`` floored, with
  ``(scales, means) = entropy_parameters(cat(h_s(z), context_prediction(y)))``, and
  ``cont_bits``;
* ``eb_values`` (N, 1, 41) on [-20, 20] and ``eb_likelihoods``: the factorized density's
  likelihood curves (unfloored, as ``_likelihood``);
* ``gc_inputs``/``gc_scales``/``gc_means`` (random, scales partly below the 0.11 bound) and
  ``gc_likelihoods`` (unfloored ``_likelihood``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sciml_inverse import atomic_path


def build(seed: int = 0):
    from compressai.models import JointAutoregressiveHierarchicalPriors

    torch.manual_seed(seed)
    model = JointAutoregressiveHierarchicalPriors(N=4, M=6)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("quantiles"):
                continue  # medians stay 0: our eval path rounds around 0
            if name.startswith("entropy_bottleneck."):
                p.add_(0.5 * torch.randn(p.shape, generator=g))
            elif name.endswith(".gamma"):  # GDN: positive off-diagonal couplings
                p.add_(0.15 * torch.rand(p.shape, generator=g))
            elif name.endswith(".beta"):
                p.mul_(1.0 + 0.3 * torch.rand(p.shape, generator=g))
            else:
                p.add_(0.05 * torch.randn(p.shape, generator=g) * p.abs().mean())
        # spread the latents over several quantization bins
        model.g_a[6].weight.mul_(40.0)
        model.h_a[4].weight.mul_(20.0)
        # scales: some channels below the 0.11 bound, others well above
        model.entropy_parameters[4].bias[:6].copy_(torch.tensor([-0.3, 0.05, 0.3, 1.0, 2.0, 4.0]))
    return model


def main(argv: list[str] | None = None) -> None:
    import compressai

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                             / "tests" / "data" / "compressai_golden.pt"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if compressai.__version__ != "1.2.8":
        raise SystemExit(f"expected compressai 1.2.8, found {compressai.__version__}")
    torch.set_num_threads(1)

    model = build(args.seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # before forward
    g = torch.Generator().manual_seed(args.seed + 2)
    x8 = torch.randint(0, 256, (2, 3, 64, 64), generator=g, dtype=torch.uint8)
    x = x8.float() / 255

    model.eval()
    with torch.no_grad():
        out = model(x)
        lik_y, lik_z = out["likelihoods"]["y"], out["likelihoods"]["z"]
        bits = -(torch.log2(lik_y).sum((1, 2, 3)) + torch.log2(lik_z).sum((1, 2, 3)))

        y = model.g_a(x)
        z = model.h_a(y)
        cz = model.entropy_bottleneck._likelihood(z.permute(1, 0, 2, 3).reshape(4, 1, -1))[0]
        cz = model.entropy_bottleneck.likelihood_lower_bound(cz)
        cz = cz.reshape(4, z.shape[0], z.shape[2], z.shape[3]).permute(1, 0, 2, 3)
        params = model.h_s(z)
        ctx = model.context_prediction(y)
        scales, means = model.entropy_parameters(torch.cat((params, ctx), 1)).chunk(2, 1)
        cy = model.gaussian_conditional._likelihood(y, scales, means)
        cy = model.gaussian_conditional.likelihood_lower_bound(cy)
        cont_bits = -(torch.log2(cy).sum((1, 2, 3)) + torch.log2(cz).sum((1, 2, 3)))

        eb_values = torch.linspace(-20, 20, 41).expand(4, 1, 41).contiguous()
        eb_lik = model.entropy_bottleneck._likelihood(eb_values)[0]
        gc_inputs = 6 * torch.randn(4, 6, 3, 3, generator=g)
        gc_scales = 0.2 * torch.rand(4, 6, 3, 3, generator=g) + torch.rand(4, 6, 3, 3,
                                                                           generator=g) ** 3 * 5
        gc_means = 3 * torch.randn(4, 6, 3, 3, generator=g)
        gc_lik = model.gaussian_conditional._likelihood(gc_inputs, gc_scales, gc_means)

    golden = {
        "compressai_version": compressai.__version__,
        "torch_version": str(torch.__version__),
        "N": 4, "M": 6, "in_channels": 3,
        "state_dict": state,
        "x_uint8": x8,
        "x_hat": out["x_hat"], "likelihoods_y": lik_y, "likelihoods_z": lik_z, "bits": bits,
        "y": y, "z": z, "cont_likelihoods_y": cy, "cont_likelihoods_z": cz,
        "cont_bits": cont_bits,
        "eb_values": eb_values, "eb_likelihoods": eb_lik,
        "gc_inputs": gc_inputs, "gc_scales": gc_scales, "gc_means": gc_means,
        "gc_likelihoods": gc_lik,
    }
    print(f"y range [{y.min():.2f}, {y.max():.2f}], z range [{z.min():.2f}, {z.max():.2f}], "
          f"scales [{scales.min():.3f}, {scales.max():.3f}]")
    print(f"eval bits {bits.tolist()}, continuous bits {cont_bits.tolist()}")
    print(f"min likelihood y {lik_y.min():.3g}, z {lik_z.min():.3g}")
    out_path = Path(args.out)
    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        # the legacy (non-zip) format has no per-tensor alignment padding: 192 kB instead of 208
        torch.save(golden, fh, _use_new_zipfile_serialization=False)
    print(f"wrote {out_path} ({out_path.stat().st_size / 1024:.1f} kB)")


if __name__ == "__main__":
    main()
