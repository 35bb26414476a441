"""Private implementation modules of :mod:`inverse.metrics`."""
