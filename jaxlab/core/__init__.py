"""The engine shared by every study; it knows nothing about any model family."""

from jaxlab.core.autodiff import energy_and_grad
from jaxlab.core.checkpoint import CheckpointMismatchError, Checkpointer
from jaxlab.core.metrics import MetricWriter, Progress, read_metrics
from jaxlab.core.population import init_run, make_population, train_population
from jaxlab.core.train import (NonFiniteLossError, TrainResult, TrainState, init_train_state,
                               make_train_step, scan_train, set_hyperparams, train, wall_time)

__all__ = [
    "CheckpointMismatchError", "Checkpointer", "MetricWriter", "NonFiniteLossError", "Progress",
    "TrainResult", "TrainState", "energy_and_grad", "init_run", "init_train_state",
    "make_population", "make_train_step", "read_metrics", "scan_train", "set_hyperparams", "train",
    "train_population", "wall_time",
]
