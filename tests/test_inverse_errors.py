"""Bad input to the public API of :mod:`inverse`, as a new user would try it (issue 13, item 6).

Each class of bad input gets a clear ``ValueError``/``TypeError`` naming the problem: checkpoints
with NaN weights or missing entries, non-finite or unrepresentable numbers, wrong types, shapes
and devices for the solvers, priors, noise models, VBLE options and metrics.
"""

from __future__ import annotations

import math

import pytest
import torch

from inverse.lpn import LPN, VectorLPNConfig, load_lpn, save_lpn
from inverse.vble import CAEConfig, CompressiveAutoencoder, load_cae, save_cae

F64 = torch.float64
TINY_CAE = dict(N=8, M=8, hyper_channels=(8, 8, 8), context_channels=8, entropy_channels=(8, 8))


def _poison(model: torch.nn.Module) -> None:
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = math.nan


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def test_lpn_checkpoint_with_nan_weights(tmp_path):
    lpn = LPN(VectorLPNConfig(dim=2, hidden=4, num_layers=1))
    _poison(lpn)
    path = save_lpn(lpn, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"nan.pt: the weights contain NaN or inf in .*probably "
                                         r"diverged: use an earlier checkpoint"):
        load_lpn(path)


@pytest.mark.parametrize("key", ["model_state", "model_config"])
def test_lpn_checkpoint_missing_an_entry(tmp_path, key):
    path = save_lpn(LPN(VectorLPNConfig(dim=2, hidden=4, num_layers=1)), tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    del ckpt[key]
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=rf"m.pt is an incomplete LPN checkpoint: missing "
                                         rf"'{key}' \(it has "):
        load_lpn(path)


def test_cae_checkpoint_with_nan_weights(tmp_path):
    model = CompressiveAutoencoder(CAEConfig(**TINY_CAE))
    _poison(model)
    path = save_cae(model, tmp_path / "cae.pt")
    with pytest.raises(ValueError, match=r"cae.pt: the weights contain NaN or inf in g_a"):
        load_cae(path)


def test_cae_checkpoint_with_missing_entries(tmp_path):
    path = save_cae(CompressiveAutoencoder(CAEConfig(**TINY_CAE)), tmp_path / "cae.pt")
    ckpt = torch.load(path, weights_only=True)
    for key, match in (("state_dict", "has no state_dict"),
                       ("config", "has no valid CAE configuration")):
        broken = {k: v for k, v in ckpt.items() if k != key}
        torch.save(broken, tmp_path / "broken.pt")
        with pytest.raises(ValueError, match=match):
            load_cae(tmp_path / "broken.pt")


def test_compressai_state_dict_with_nan_weights():
    from inverse.vble import cae_from_compressai

    model = CompressiveAutoencoder(CAEConfig(**TINY_CAE))
    sd = model.state_dict()
    sd["g_a.0.weight"] = torch.full_like(sd["g_a.0.weight"], math.inf)
    with pytest.raises(ValueError, match=r"the CompressAI state dict: the weights contain NaN or "
                                         r"inf in g_a.0.weight"):
        cae_from_compressai(sd, alpha=0.0067)


def test_cae_training_checkpoint_missing_an_entry(tmp_path):
    from inverse.vble import load_training_checkpoint
    from inverse.vble._train import FORMAT, FORMAT_VERSION
    from sciml_inverse import library_version

    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION,
                "library_version": library_version(), "model_state": {}}, tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"t.pt is an incomplete CAE training checkpoint: missing "
                                         r"'phase', 'model_config'"):
        load_training_checkpoint(tmp_path / "t.pt")
