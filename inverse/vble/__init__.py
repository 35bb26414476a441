"""VBLE / VBLE-xz: variational Bayes restoration in the latent space of a compressive autoencoder.

The prior is a compressive autoencoder (:class:`CompressiveAutoencoder`, CompressAI's mbt2018
hyperprior + context model re-implemented in plain PyTorch, with the variance decoder of
VBLE-xz):

* :class:`CAEConfig` (``CAEConfig.small()`` is the shipped light configuration) and
  :class:`CompressiveAutoencoder` with ``analysis``, ``decode``, ``decode_std``,
  ``latent_bits``, ``forward`` (training pass) and ``gamma``;
* :func:`pad_to_multiple` / :func:`crop` for images of any size;
* :func:`save_cae` / :func:`load_cae` / :func:`default_cae` (shipped weights) and
  :func:`cae_from_compressai` (a local CompressAI mbt2018 checkpoint);
* the building blocks :class:`GDN`, :class:`MaskedConv2d`, :class:`LowerBound`,
  :class:`NonNegativeParametrizer`, :class:`EntropyBottleneck`, :class:`GaussianConditional`.

The posterior (Biquard et al., arXiv 2412.04130 and 2311.17744):

* :func:`vble_restore` with :class:`VBLEOptions` (``method`` = ``"map_z"``, ``"vble_z"`` or
  ``"vble_xz"``, λ, ``rate_scale``, iterations, samples) returns a :class:`VBLEResult` (MMSE
  image, per-pixel std, D(z̄), samples, loss histories) for any :class:`operators.LinearOperator`
  and a noise model of :mod:`inverse` (Gaussian or Poisson-Gaussian);
  :func:`initial_estimate` is its starting point.

Training (the commands that made the shipped weights are in ``inverse/vble/weights/README.md``):

* :func:`train_cae` (rate-distortion) and :func:`train_std_decoder` (the variance decoder) with
  :class:`TrainOptions`, checkpoints and resume, DistributedDataParallel under ``torchrun``
  (:func:`upgrade_training_checkpoint` rewrites training checkpoints of the older layout);
* :func:`load_satellite_train` / :class:`PatchSampler` (of :class:`PatchSource` images):
  random patches of the training images with flips and rotations; :func:`evaluate_cae` and
  :func:`fit_decoder` (the decoder-fit ceiling).
"""

from sciml_inverse._deprecation import deprecated_aliases as _deprecated_aliases

from ._auto import AutoRule as AutoRule
from ._auto import default_options as default_options
from ._auto import load_auto_rule as load_auto_rule
from ._auto import select_model as select_model
from ._cae import CAEConfig as CAEConfig
from ._cae import CompressiveAutoencoder as CompressiveAutoencoder
from ._cae import crop as crop
from ._cae import pad_to_multiple as pad_to_multiple
from ._checkpoint import SHIPPED_MODELS as SHIPPED_MODELS
from ._checkpoint import cae_from_compressai as cae_from_compressai
from ._checkpoint import default_cae as default_cae
from ._checkpoint import load_cae as load_cae
from ._checkpoint import save_cae as save_cae
from ._data import PatchSampler as PatchSampler
from ._data import PatchSource as PatchSource
from ._data import load_satellite_train as load_satellite_train
from ._entropy import EntropyBottleneck as EntropyBottleneck
from ._entropy import GaussianConditional as GaussianConditional
from ._entropy import gaussian_likelihood as gaussian_likelihood
from ._layers import GDN as GDN
from ._layers import LowerBound as LowerBound
from ._layers import MaskedConv2d as MaskedConv2d
from ._layers import NonNegativeParametrizer as NonNegativeParametrizer
from ._layers import lower_bound as lower_bound
from ._posterior import VBLEOptions as VBLEOptions
from ._posterior import VBLEResult as VBLEResult
from ._posterior import decoder_error_rule as decoder_error_rule
from ._posterior import estimate_decoder_error_scale as estimate_decoder_error_scale
from ._posterior import exact_conditional_sample as exact_conditional_sample
from ._posterior import initial_estimate as initial_estimate
from ._posterior import observation_ratio as observation_ratio
from ._posterior import vble_restore as vble_restore
from ._train import TrainHistory as TrainHistory
from ._train import TrainOptions as TrainOptions
from ._train import evaluate_cae as evaluate_cae
from ._train import fit_decoder as fit_decoder
from ._train import load_training_checkpoint as load_training_checkpoint
from ._train import train_cae as train_cae
from ._train import train_std_decoder as train_std_decoder
from ._train import upgrade_training_checkpoint as upgrade_training_checkpoint

__all__ = [
    "AutoRule",
    "default_options",
    "load_auto_rule",
    "select_model",
    "CAEConfig",
    "exact_conditional_sample",
    "estimate_decoder_error_scale",
    "decoder_error_rule",
    "observation_ratio",
    "CompressiveAutoencoder",
    "pad_to_multiple",
    "crop",
    "save_cae",
    "load_cae",
    "default_cae",
    "SHIPPED_MODELS",
    "cae_from_compressai",
    "EntropyBottleneck",
    "GaussianConditional",
    "gaussian_likelihood",
    "GDN",
    "LowerBound",
    "MaskedConv2d",
    "NonNegativeParametrizer",
    "lower_bound",
    "VBLEOptions",
    "VBLEResult",
    "vble_restore",
    "initial_estimate",
    "TrainOptions",
    "TrainHistory",
    "train_cae",
    "train_std_decoder",
    "load_training_checkpoint",
    "upgrade_training_checkpoint",
    "evaluate_cae",
    "fit_decoder",
    "PatchSampler",
    "PatchSource",
    "load_satellite_train",
]

# former names (naming scheme: ...Options for how a call runs), with a DeprecationWarning
__getattr__ = _deprecated_aliases("inverse.vble", {"TrainConfig": ("TrainOptions", TrainOptions)})
del _deprecated_aliases
