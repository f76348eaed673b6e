"""Trying model-written code: the gate (effects), the fork (sandbox), the evidence plan."""
