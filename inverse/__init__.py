"""Variational and learned priors for inverse problems.

This package will hold learned proximal networks (LPN), plug-and-play (PnP) solvers, and
VBLE-xz restoration of satellite images, all written against the linear operators of
:mod:`operators`. None of it is implemented yet: these land in later issues.
"""
