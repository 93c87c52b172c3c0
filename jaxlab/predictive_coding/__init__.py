"""Predictive coding: layered PC networks and their learning rules, and hierarchical Gaussian filters.

- `network`: the energy F of a layered PC network (dense and conv layers), its local gradients, the
  feedforward pass (Whittington & Bogacz 2017).
- `inference`: node relaxation as an optax-style (init, update) algorithm under lax.scan, and the
  weight updates of standard PC, the fixed-prediction assumption, Z-IL and incremental PC, as
  surrogate losses or train steps for `jaxlab.core`.
- `hgf`: binary and continuous hierarchical Gaussian filters, standard and eHGF update orders.
- `data`: scikit-learn's digits (optional extra `jaxlab[data]`) and a synthetic teacher task.
"""

from jaxlab.predictive_coding import data, hgf, inference, network
from jaxlab.predictive_coding.inference import (fixed_prediction_gradients, incremental_step, infer,
                                                make_incremental_train_step, make_loss, pc_gradients,
                                                weight_update, zero_divergence_gradients)
from jaxlab.predictive_coding.network import (Conv, Dense, Network, energies, energy, errors,
                                              feedforward_loss, forward, init, local_gradients, mlp,
                                              precisions)

__all__ = [
    "Conv", "Dense", "Network", "data", "energies", "energy", "errors", "feedforward_loss",
    "fixed_prediction_gradients", "forward", "hgf", "incremental_step", "infer", "inference", "init",
    "local_gradients", "make_incremental_train_step", "make_loss", "mlp", "network", "pc_gradients",
    "precisions", "weight_update", "zero_divergence_gradients",
]
