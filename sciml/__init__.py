"""Scientific machine learning: neural operators and regularized neural differential equations.

This package will hold the DGNO and MultiONet neural operators for PDEs, and regularized
neural ODE/SDE solvers, built on :mod:`operators`. None of it is implemented yet: these land in
later issues.
"""
