"""Lazy vs rich learning: empirical NTKs, linearized models and laziness metrics for any model.

Study modules (imported as submodules, their names would clash at package level):
  `connectivity` (Liu et al. 2024: rank-controlled initial connectivity, the RNN variant),
  `single_neuron` (Kunin et al. 2024: a single neuron with layer learning rates),
  `critical_periods` (Kleinman et al. 2024: two-pathway deficits, matrix completion),
  `grokking` (Kumar et al. 2024: quadratic-activation network, summary statistics),
  `jepa` (Littwin et al. 2024: deep linear JEPA vs MAE, rotated two-view data, balanced init).
The lazy limit of Chizat et al. 2019 needs only `centered` and `lazy_learning_rate`.
"""

from jaxlab.lazy_rich import connectivity, critical_periods, grokking, jepa, single_neuron

from jaxlab.lazy_rich.metrics import (kernel_distance, kernel_target_alignment, linear_cka,
                                      linearization_gap, parameter_norm, relative_kernel_change,
                                      relative_weight_change, relative_weight_change_per_layer)
from jaxlab.lazy_rich.ntk import (centered, empirical_ntk, lazy_learning_rate, linearize,
                                  ntk_predict)

__all__ = [
    "centered", "connectivity", "critical_periods", "grokking", "jepa", "single_neuron", "empirical_ntk", "kernel_distance", "kernel_target_alignment", "lazy_learning_rate",
    "linear_cka", "linearization_gap", "linearize", "ntk_predict", "parameter_norm",
    "relative_kernel_change", "relative_weight_change", "relative_weight_change_per_layer",
]
