"""Neural operators for parametric PDEs: DeepONet, MultiONet, DGNO and a strong-form baseline.

* :class:`DeepONet`, :class:`MultiONet` (batch and Cartesian-product layouts, residual
  activations :class:`TanhSin`, :class:`SiLUSin`, :class:`SiLUId`), encoders
  :class:`MLPEncoder`, :class:`CNNEncoder`;
* :class:`DGNO` (Zang & Koutsourelakis 2025): bounded latent, Bernoulli/Gaussian coefficient
  likelihoods, hard-boundary u-decoder, weak-form virtual observables with Wendland test
  functions (:class:`WeakFormOptions`), mixed flux form for two-phase coefficients, trunk
  features and Jacobians shared by the batch;
* :class:`PhysicsInformedOperator` + :class:`StrongFormObjective`: the PI-DeepONet/PI-MultiONet
  baseline;
* :class:`PDE` (with :class:`Box`, :class:`Fields`): an equation stated as data (domain,
  hard boundary conditions, coefficient, weak/strong residual); :func:`darcy_pde`,
  :func:`burgers_pde`;
* :func:`fit` with :class:`TrainOptions` (validation selection, checkpoints, resume, torchrun);
  :func:`save`, :func:`load` and :func:`predict` for trained operators, and
  :func:`darcy_dgno` (the examples' Darcy DGNO, to load its checkpoints into);
* :func:`invert_darcy`: coefficients from noisy sensors (an :class:`operators.PointSampling`).

See ``docs/guide/neural_operators.rst``.
"""

from ._base import AbstractActivation as AbstractActivation
from ._base import AbstractNeuralOperator as AbstractNeuralOperator
from ._base import MLPStack as MLPStack
from ._base import SiLU as SiLU
from ._base import SiLUId as SiLUId
from ._base import SiLUSin as SiLUSin
from ._base import Tanh as Tanh
from ._base import TanhSin as TanhSin
from ._checkpoint import load as load
from ._checkpoint import predict as predict
from ._checkpoint import save as save
from ._deeponet import DeepONet as DeepONet
from ._dgno import DGNO as DGNO
from ._dgno import AbstractCoefficientLikelihood as AbstractCoefficientLikelihood
from ._dgno import BernoulliLikelihood as BernoulliLikelihood
from ._dgno import DGNOLossOptions as DGNOLossOptions
from ._dgno import DGNOObjective as DGNOObjective
from ._dgno import GaussianLikelihood as GaussianLikelihood
from ._dgno import dgno_loss as dgno_loss
from ._dgno import grid_points as grid_points
from ._dgno import sine_mollifier as sine_mollifier
from ._encoders import CNNEncoder as CNNEncoder
from ._encoders import MLPEncoder as MLPEncoder
from ._inverse import InverseOptions as InverseOptions
from ._inverse import InverseResult as InverseResult
from ._inverse import add_noise_snr as add_noise_snr
from ._inverse import invert_darcy as invert_darcy
from ._multionet import MultiONet as MultiONet
from ._multionet import OperatorJet as OperatorJet
from ._pde import PDE as PDE
from ._pde import Box as Box
from ._pde import Fields as Fields
from ._pde import burgers_pde as burgers_pde
from ._pde import cosine_mollifier as cosine_mollifier
from ._pde import darcy_pde as darcy_pde
from ._presets import darcy_dgno as darcy_dgno
from ._strong_form import PhysicsInformedOperator as PhysicsInformedOperator
from ._strong_form import StrongFormObjective as StrongFormObjective
from ._strong_form import StrongFormOptions as StrongFormOptions
from ._strong_form import bilinear_with_gradient as bilinear_with_gradient
from ._strong_form import strong_residual as strong_residual
from ._train import AbstractObjective as AbstractObjective
from ._train import SupervisedObjective as SupervisedObjective
from ._train import TrainOptions as TrainOptions
from ._train import TrainResult as TrainResult
from ._train import evaluate as evaluate
from ._train import fit as fit
from ._train import relative_l2 as relative_l2
from ._weak_form import Interpolation as Interpolation
from ._weak_form import TestFunctions as TestFunctions
from ._weak_form import WeakFormOptions as WeakFormOptions
from ._weak_form import coefficient_at as coefficient_at
from ._weak_form import quadrature_rule as quadrature_rule
from ._weak_form import sample_test_functions as sample_test_functions
from ._weak_form import weak_residual as weak_residual
from ._weak_form import wendland as wendland
from ._weak_form import wendland_grad as wendland_grad

__all__ = [
    "AbstractNeuralOperator", "AbstractActivation", "MLPStack", "Tanh", "SiLU", "TanhSin",
    "SiLUSin", "SiLUId", "DeepONet", "MultiONet", "OperatorJet", "MLPEncoder", "CNNEncoder",
    "DGNO", "AbstractCoefficientLikelihood", "BernoulliLikelihood", "GaussianLikelihood",
    "DGNOLossOptions", "DGNOObjective", "dgno_loss", "grid_points", "sine_mollifier",
    "PhysicsInformedOperator", "StrongFormOptions", "StrongFormObjective",
    "bilinear_with_gradient", "strong_residual", "AbstractObjective", "SupervisedObjective",
    "TrainOptions", "TrainResult", "fit", "evaluate", "relative_l2", "WeakFormOptions",
    "TestFunctions", "Interpolation", "wendland", "wendland_grad", "quadrature_rule",
    "sample_test_functions", "weak_residual", "coefficient_at", "InverseOptions",
    "InverseResult", "invert_darcy", "add_noise_snr", "save", "load", "predict", "PDE", "Box",
    "Fields", "darcy_pde", "burgers_pde", "cosine_mollifier", "darcy_dgno",
]
