"""Energy-based denoising of 8x8 digits against a diffusion-style denoiser (Gladstone et al. 2025).
The logic is in `experiment.run`.

  python -m experiments.ebt_denoise.main \
      --config=experiments/ebt_denoise/config.py:quick --workdir=/tmp/ebt_denoise
"""

from experiments.common import study_main
from experiments.ebt_denoise import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/ebt_denoise/config.py")
