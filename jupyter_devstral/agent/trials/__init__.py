"""Trying model-written code: the gate (effects) and the fork (sandbox, shipped to kernels)."""
