r"""Progress measures and induction-head scores, computed from the activations of `model`.

- Reddy 2024 (ICLR, arXiv 2312.03002, sec. 3, "progress measures"): ILA1, the layer-1 attention
  of each label token to its own item; TILA2, the layer-2 attention of the query to the label
  tokens carrying the target label (summed over tokens: a per-token average caps near 1/B on
  bursty contexts); TLA2, the query's total layer-2 attention to label tokens; CLA, the fraction
  of predictions that are some label present in the context; IH2, TILA2 minus the attention the
  same number of incorrect label tokens receive (0 when attention is uniform over labels).
- Singh et al. 2024 (ICML, sec. 4): induction strength of a layer-2 head, attention from the query
  to the correct label token minus that to the incorrect one(s); the phase-change time, the first
  evaluation at which a curve crosses a threshold.
- Olsson et al. 2022 (Transformer Circuits Thread, appendix "Head activation evaluators"):
  prefix-matching (attention to the tokens that followed earlier occurrences of the current
  token), previous-token score, and the copying score of a head's OV circuit, both as Olsson's
  positive-logit fraction and as the eigenvalue ratio sum(lambda) / sum(|lambda|) of Elhage et
  al. 2021.

All functions are pure jnp over arrays, jittable and vmappable (sizes static).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.induction import data as data_lib


def _item_label_positions(num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
  """Reddy's layout x_1, l_1, ..., x_N, l_N, x_q: items at 2i, labels at 2i + 1."""
  return 2 * np.arange(num_pairs), 2 * np.arange(num_pairs) + 1


def reddy_progress(logits_BxL: jax.Array, acts: dict, batch: data_lib.Batch,
                   first_layer: int = 0, second_layer: int = 1) -> dict[str, jax.Array]:
  """Accuracy, loss and Reddy's progress measures (means over the batch), head 0 of each layer."""
  n = batch.context_labels.shape[1]
  items, labels = _item_label_positions(n)
  p1 = acts[f"layer{first_layer}/pattern"][:, 0]  # [b, T, T]
  p2 = acts[f"layer{second_layer}/pattern"][:, 0, -1]  # query row [b, T]
  prediction = jnp.argmax(logits_BxL, axis=-1)
  correct_label = batch.context_labels == batch.target[:, None]  # [b, N]
  logp = jax.nn.log_softmax(logits_BxL)
  to_correct = jnp.sum(p2[:, labels] * correct_label, axis=1)
  to_incorrect = jnp.sum(p2[:, labels] * ~correct_label, axis=1)
  per_incorrect = to_incorrect / jnp.maximum(jnp.sum(~correct_label, axis=1), 1)
  return {
      "accuracy": jnp.mean(prediction == batch.target),
      "loss": -jnp.mean(jnp.take_along_axis(logp, batch.target[:, None], axis=1)),
      "ila1": jnp.mean(p1[:, labels, items]),
      "tila2": jnp.mean(jnp.sum(p2[:, labels] * correct_label, axis=1)),
      "tla2": jnp.mean(jnp.sum(p2[:, labels], axis=1)),
      "cla": jnp.mean(jnp.any(prediction[:, None] == batch.context_labels, axis=1)),
      # induction strength: attention on the correct label tokens minus what the same number of
      # incorrect label tokens get (0 for attention uniform over labels, 1 for a perfect head)
      "ih2": jnp.mean(to_correct - jnp.sum(correct_label, axis=1) * per_incorrect),
  }


def induction_strength(query_pattern_BxHxT: jax.Array, correct_BxT: jax.Array,
                       incorrect_BxT: jax.Array) -> jax.Array:
  """[H]: mean over the batch of (attention to correct-label tokens) - (to incorrect ones),
  summed over tokens (Singh et al. 2024)."""
  correct = jnp.sum(query_pattern_BxHxT * correct_BxT[:, None, :], axis=-1)
  incorrect = jnp.sum(query_pattern_BxHxT * incorrect_BxT[:, None, :], axis=-1)
  return jnp.mean(correct - incorrect, axis=0)


def prefix_matching_score(pattern_BxHxTxT: jax.Array, tokens_BxT: jax.Array) -> jax.Array:
  """[H]: attention mass on keys that followed an earlier occurrence of the query's token,
  averaged over the query positions that have any such key (Olsson et al. 2022)."""
  mask = data_lib.prefix_match_mask(tokens_BxT)  # [b, T, T]
  has = jnp.any(mask, axis=-1)  # [b, T]
  mass = jnp.sum(pattern_BxHxTxT * mask[:, None], axis=-1)  # [b, H, T]
  return jnp.sum(mass * has[:, None], axis=(0, 2)) / jnp.maximum(jnp.sum(has), 1)


def previous_token_score(pattern_BxHxTxT: jax.Array) -> jax.Array:
  """[H]: mean attention from position i to i - 1 over i >= 1."""
  sub = jnp.diagonal(pattern_BxHxTxT, offset=-1, axis1=-2, axis2=-1)  # [b, H, T-1]
  return jnp.mean(sub, axis=(0, 2))


def copying_fraction(ov_VxV: jax.Array) -> jax.Array:
  """Olsson's copying score in [-1, 1]: for each source token s, the ReLU of the mean-subtracted
  logit row; the fraction of that positive mass on s itself, averaged over s, mapped 0..1 ->
  -1..1 (a perfect copier scores 1)."""
  raised = jax.nn.relu(ov_VxV - ov_VxV.mean(axis=1, keepdims=True))
  own = jnp.diagonal(raised) / jnp.maximum(raised.sum(axis=1), 1e-30)
  return 2.0 * jnp.mean(own) - 1.0


def copying_eigenvalue_score(ov_VxV: jax.Array) -> jax.Array:
  """sum(lambda) / sum(|lambda|) over the OV circuit's eigenvalues (Elhage et al. 2021): +1 for
  a pure copier (positive eigenvalues), -1 for an anti-copier, 0 for an all-zero circuit."""
  lam = jnp.linalg.eigvals(ov_VxV)
  total = jnp.sum(jnp.abs(lam))
  return jnp.where(total > 0, jnp.real(jnp.sum(lam)) / jnp.where(total > 0, total, 1.0), 0.0)


def first_crossing(steps, values, threshold: float, above: bool = True) -> float:
  """The first step at which `values` is > threshold (above) or < threshold; nan if never.
  Reddy's and Singh's phase-change time (Singh: loss < 0.4 ln 2)."""
  steps, values = np.asarray(steps), np.asarray(values)
  hit = values > threshold if above else values < threshold
  return float(steps[np.argmax(hit)]) if hit.any() else float("nan")


def jump_window(steps, values, low: float, high: float) -> tuple[float, float]:
  """(t_low, t_high): the first step above `high`, and the last step before it still below `low`
  (0 if none); their difference is how abrupt a transition is. nan, nan if `high` is never
  reached."""
  steps, values = np.asarray(steps), np.asarray(values)
  t_high = first_crossing(steps, values, high)
  if not np.isfinite(t_high):
    return float("nan"), float("nan")
  before = (steps < t_high) & (values < low)
  return (float(steps[before][-1]) if before.any() else 0.0), t_high


def steepest_rise(steps, values) -> tuple[float, float]:
  """(step, slope) of the largest increase between consecutive evaluations: where an abrupt
  transition sits on a logged curve."""
  steps, values = np.asarray(steps, float), np.asarray(values, float)
  if steps.size < 2:
    return float("nan"), float("nan")
  rise = np.diff(values) / np.diff(steps)
  i = int(np.argmax(rise))
  return float(0.5 * (steps[i] + steps[i + 1])), float(rise[i])
