"""Shared pure building blocks used by several model families."""

from jaxlab.nn.mlp import mlp_apply, mlp_init

__all__ = ["mlp_apply", "mlp_init"]
