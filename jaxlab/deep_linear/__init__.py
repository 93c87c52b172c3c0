"""Deep linear networks (Saxe, McClelland & Ganguli 2014): model, whitened tasks, mode analysis."""

from jaxlab.deep_linear.analysis import (balancedness, crossing_times, mode_matrix, mode_strengths,
                                         two_layer_mode_vectors)
from jaxlab.deep_linear.data import Task, make_task, random_orthogonal
from jaxlab.deep_linear.model import (DeepLinearConfig, apply, end_to_end, init, init_decoupled,
                                      loss)

__all__ = [
    "DeepLinearConfig", "Task", "apply", "balancedness", "crossing_times", "end_to_end", "init",
    "init_decoupled", "loss", "make_task", "mode_matrix", "mode_strengths", "random_orthogonal",
    "two_layer_mode_vectors",
]
