"""Trains the deep linear net with checkpoints and, if asked, SIGKILLs itself after a given step.

Used by test_kill_resume.py: the kill comes from inside the run (a progress hook), so the test knows
exactly what was on disk when the process died.
"""

import os
import signal
import sys

import jax
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)

from jaxlab import core  # noqa: E402
from jaxlab import deep_linear as dl  # noqa: E402


class KillAt(core.Progress):

  def __init__(self, step):
    super().__init__(every_s=1e9)
    self.kill_step = step

  def update(self, step, row):
    if step == self.kill_step:
      os.kill(os.getpid(), signal.SIGKILL)


def main(workdir, kill_step):
  task = dl.make_task(jax.random.key(0), 8, 8, [3.0, 2.0, 1.0])
  params = dl.init(jax.random.key(1), dl.DeepLinearConfig((8, 8, 8), 0.1))
  optimizer = optax.adam(3e-3)
  state = core.init_train_state(params, optimizer, jax.random.key(2))
  result = core.train(core.make_train_step(dl.loss, optimizer), state, (task.x, task.y),
                      num_steps=400, log_every=20, steps_per_chunk=20, checkpoint_every=100,
                      workdir=workdir, progress=KillAt(kill_step) if kill_step > 0 else False)
  np.savez(os.path.join(workdir, "final.npz"), *jax.tree.leaves(result.state.params))


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]))
