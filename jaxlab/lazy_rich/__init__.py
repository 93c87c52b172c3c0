"""Lazy vs rich learning: empirical NTKs, linearized models and laziness metrics for any model.

Studies: Chizat et al. 2019 (the lazy limit in the output scale alpha), ...
"""

from jaxlab.lazy_rich.metrics import (kernel_distance, kernel_target_alignment, linear_cka,
                                      linearization_gap, parameter_norm, relative_kernel_change,
                                      relative_weight_change, relative_weight_change_per_layer)
from jaxlab.lazy_rich.ntk import (centered, empirical_ntk, lazy_learning_rate, linearize,
                                  ntk_predict)

__all__ = [
    "centered", "empirical_ntk", "kernel_distance", "kernel_target_alignment", "lazy_learning_rate",
    "linear_cka", "linearization_gap", "linearize", "ntk_predict", "parameter_norm",
    "relative_kernel_change", "relative_weight_change", "relative_weight_change_per_layer",
]
