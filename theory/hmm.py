"""Exact output statistics of a discrete hidden Markov model, and brute-force likelihoods.

The HMMs of Torre, Viscione, Pompe, Grewe & Mante 2025 ("Mechanistic interpretability of RNNs
emulating hidden Markov models", NeurIPS; arXiv 2510.25674), as their code builds them
(github.com/EliaTorre/hmmrnn, `scripts/hmm.py`): hidden states s_t in {0..M-1}, s_0 ~ p_0
(`initial`), P(s_{t+1} = j | s_t = i) = A_ij (`transition`), P(y_t = a | s_t = i) = E_ia
(`emission`). The RNN is trained to match the statistics below, which the paper's
`scripts/test.py` reports as output frequencies, the output transition matrix and the
"volatility" (output changes per sequence). Derivations are ours.

  stationary    pi A = pi, sum pi = 1 (the null vector of (A - I)^T with a normalisation row).
  state at t    p_t = p_0 A^t;  output marginal at t: p_t E;  stationary: pi E.
  bigram        P(y_t = a, y_{t+1} = b) = sum_ij p_t,i E_ia A_ij E_jb; stationary
                B = E^T diag(pi) A E, whose row and column sums are both pi E.
  repeat        P(y' = a | y = a) = B_aa / (pi E)_a (the diagonal of the paper's transition matrix).
  changes       N = sum_{t=0}^{T-2} 1[y_t != y_{t+1}], E N = sum_{t=0}^{T-2} p_t c with
                c_i = P(y_t != y_{t+1} | s_t = i) = 1 - sum_a E_ia (A E)_ia; from pi that is
                (T - 1)(1 - tr B). The whole law of N follows from a forward recursion over
                (count n, state i, last symbol a), which also gives its variance.
  hidden dwell  once in state i the chain stays d steps with P(d) = (1 - A_ii) A_ii^(d-1)
                (geometric, mean 1 / (1 - A_ii)).
  output runs   exact, and not geometric in general: for a run of symbol a starting at t >= 1 in
                the stationary chain, v_j = P(y_{t-1} != a, s_t = j, y_t = a)
                = [(pi * (1 - E_a)) A]_j E_ja, and D_a = A diag(E_a) (move, then emit a again;
                sub-stochastic), so
                P(run >= d | a run of a starts at t) = v D_a^(d-1) 1 / v 1 and the mean run is
                v (I - D_a)^-1 1 / v 1. With E = I this is the hidden dwell time. For "two" each
                frequent symbol has one emitting state, so its runs are geometric with ratio .9405.
  rare symbols  the loss's cost between one-hot sequences, |x - y|^2 / 2, is their Hamming distance.
                Let Q be the law with the symbols R never emitted, each state's mass on R moved to
                one other symbol (`jaxlab.hmm_rnn.hmm.without_rare_symbols`). Every y ~ Q differs
                from x ~ P at each t with x_t in R, so any coupling pays at least E_P #{t : x_t in
                R}; replacing each R-emission by its state's substitute draws from Q and pays
                exactly that. So the unregularised transport cost is
                OT_0(P, Q) = sum_t p_t E[:, R] 1: .01 T for the chains (0.3 at T = 30, 1 at
                T = 100). The debiased Sinkhorn divergence S_eps(P, Q) tends to it as eps -> 0.
  best epoch    keeping the lowest of n noisy validation losses (the paper keeps its best epoch)
                shifts a loss with spread s by s E[min of n i.i.d. N(0, 1)], where
                E min = int x n phi(x) (1 - Phi(x))^(n-1) dx (order statistics): -1/sqrt(pi) for
                n = 2, -3/(2 sqrt(pi)) for n = 3, -3.04 for n = 500.

The six families (linear chains with q = 0.05^(1/(M-1)) = .05, .2236, .3684, .4729 for M = 2..5;
fully connected; cyclic). Their uniform start is stationary (every A is symmetric, so doubly
stochastic); values from the functions below, all of them checked in tests/test_hmm.py:

  family  pi E                  P(y'=y | y)            1 - tr B   changes / sequence (mean +- s.d.)
                                                                  T = 30           T = 100
  two     [.495, .010, .495]    [.9405, .0100, .9405]  .06881      1.995 +- 1.529   6.812 +- 2.833
  three   [.495, .010, .495]    [.7512, .0100, .7512]  .25620      7.430 +- 2.913  25.364 +- 5.417
  four    [.495, .010, .495]    [.7092, .0100, .7092]  .29778      8.636 +- 2.981  29.480 +- 5.535
  five    [.495, .010, .495]    [.6957, .0100, .6957]  .31117      9.024 +- 3.066  30.806 +- 5.696
  fully   [1/3, 1/3, 1/3]       [.9136, .9136, .9136]  .08645      2.507 +- 1.782   8.558 +- 3.303
  cyclic  [.25, .50, .25]       [.7835, .7880, .7835]  .21425      6.213 +- 2.751  21.211 +- 5.106

The paper trains at T = 100 (two), 30 (three, four, fully), 40 (five, cyclic) (`scripts/config.py`),
where the expected changes are 6.812, 7.430, 8.636, 12.136, 2.507 and 8.356.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import special


def _arrays(transition, emission=None):
  a = np.asarray(transition, dtype=np.float64)
  if a.ndim != 2 or a.shape[0] != a.shape[1]:
    raise ValueError(f"transition must be [M, M], got shape {a.shape}")
  if emission is None:
    return a
  e = np.asarray(emission, dtype=np.float64)
  if e.ndim != 2 or e.shape[0] != a.shape[0]:
    raise ValueError(f"emission must be [{a.shape[0]}, K], got shape {e.shape}")
  return a, e


def stationary_distribution(transition) -> np.ndarray:
  """pi with pi A = pi, sum pi = 1 (least squares on the stacked system; exact for ergodic A)."""
  a = _arrays(transition)
  m = a.shape[0]
  lhs = np.concatenate([a.T - np.eye(m), np.ones((1, m))], axis=0)
  rhs = np.concatenate([np.zeros(m), [1.0]])
  pi, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
  return pi


def state_marginals(start, transition, length: int) -> np.ndarray:
  """p_t = p_0 A^t for t = 0..length-1: [T, M]."""
  a = _arrays(transition)
  p = np.asarray(start, dtype=np.float64)
  out = []
  for _ in range(length):
    out.append(p)
    p = p @ a
  return np.stack(out)


def output_marginal(states, emission) -> np.ndarray:
  """P(y = a) = (p E)_a for the state distribution p (pi E at stationarity)."""
  return np.asarray(states, dtype=np.float64) @ np.asarray(emission, dtype=np.float64)


def bigram(states, transition, emission) -> np.ndarray:
  """B_ab = P(y_t = a, y_{t+1} = b) = sum_ij p_i E_ia A_ij E_jb for the distribution p of s_t."""
  a, e = _arrays(transition, emission)
  return e.T @ (np.asarray(states, dtype=np.float64)[:, None] * a) @ e


def repeat_probabilities(states, transition, emission) -> np.ndarray:
  """P(y_{t+1} = a | y_t = a) = B_aa / (p E)_a per symbol a (nan for a symbol never emitted)."""
  b = bigram(states, transition, emission)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.diag(b) / b.sum(axis=1)


def change_probability_per_state(transition, emission) -> np.ndarray:
  """c_i = P(y_t != y_{t+1} | s_t = i) = 1 - sum_a E_ia (A E)_ia."""
  a, e = _arrays(transition, emission)
  return 1.0 - np.sum(e * (a @ e), axis=1)


def expected_changes(start, transition, emission, length: int) -> float:
  """E #{t < T-1 : y_t != y_{t+1}} for a sequence of `length` T started from `start`."""
  if length < 2:
    return 0.0
  p = state_marginals(start, transition, length - 1)
  return float(np.sum(p @ change_probability_per_state(transition, emission)))


def changes_distribution(start, transition, emission, length: int) -> np.ndarray:
  """P(N = n), n = 0..T-1, for the number of output changes N in a sequence of `length` T.

  Forward recursion over alpha[n, i, a] = P(n changes so far, s_t = i, y_t = a):
  alpha'[n, j, b] = E_jb sum_i A_ij (alpha[n, i, b] + sum_{a != b} alpha[n-1, i, a]).
  """
  a, e = _arrays(transition, emission)
  alpha = np.zeros((length, a.shape[0], e.shape[1]))
  alpha[0] = np.asarray(start, dtype=np.float64)[:, None] * e
  for _ in range(length - 1):
    total = alpha.sum(axis=2, keepdims=True)  # [n, i, 1]
    other = total - alpha  # sum over a != b, for each b
    shifted = np.concatenate([np.zeros_like(other[:1]), other[:-1]], axis=0)  # count n - 1
    alpha = np.einsum("ij,nib->njb", a, alpha + shifted) * e[None, :, :]
  return alpha.sum(axis=(1, 2))


def rare_symbol_transport_cost(start, transition, emission, length: int, symbols) -> float:
  """E #{t < T : y_t in symbols}: the exact optimal-transport cost (cost |x - y|^2 / 2 between
  one-hot sequences) from the HMM's law of `length`-symbol sequences to the same HMM with `symbols`
  never emitted (module docstring, "rare symbols")."""
  a, e = _arrays(transition, emission)
  rare = np.zeros(e.shape[1], dtype=bool)
  rare[np.asarray(symbols, dtype=int)] = True
  return float(np.sum(state_marginals(start, a, length) @ e[:, rare]))


def expected_minimum_of_normals(n: int) -> float:
  """E[min of n i.i.d. standard normals] (module docstring, "best epoch"), by quadrature."""
  if n < 1:
    raise ValueError(f"n must be >= 1, got {n}")
  x = np.linspace(-12.0, 12.0, 48_001)
  log_density = (np.log(n) - x ** 2 / 2 - 0.5 * np.log(2 * np.pi)
                 + (n - 1) * special.log_ndtr(-x))
  return float(np.trapezoid(x * np.exp(log_density), x))


def hidden_dwell_pmf(transition, max_length: int) -> np.ndarray:
  """P(dwell = d) = (1 - A_ii) A_ii^(d-1), d = 1..max_length: [M, max_length]."""
  stay = np.diag(_arrays(transition))
  d = np.arange(1, max_length + 1)
  return (1.0 - stay)[:, None] * stay[:, None] ** (d[None, :] - 1)


def output_run_survival(transition, emission, symbol: int, max_length: int) -> np.ndarray:
  """P(run >= d | a run of `symbol` starts), d = 1..max_length, for the stationary chain.

  v D_a^(d-1) 1 / v 1, v_j = [(pi * (1 - E_a)) A]_j E_ja, D_a = A diag(E_a) (module docstring).
  """
  a, e = _arrays(transition, emission)
  e_a = e[:, symbol]
  v = ((stationary_distribution(a) * (1.0 - e_a)) @ a) * e_a
  if v.sum() <= 0:
    raise ValueError(f"symbol {symbol} never starts a run under this HMM")
  d_a = a * e_a[None, :]
  out, w = [], v / v.sum()
  for _ in range(max_length):
    out.append(w.sum())
    w = w @ d_a
  return np.array(out)


def mean_output_run(transition, emission, symbol: int) -> float:
  """E[run length of `symbol`] = v (I - D_a)^-1 1 / v 1 (stationary)."""
  a, e = _arrays(transition, emission)
  e_a = e[:, symbol]
  v = ((stationary_distribution(a) * (1.0 - e_a)) @ a) * e_a
  d_a = a * e_a[None, :]
  return float(v @ np.linalg.solve(np.eye(a.shape[0]) - d_a, np.ones(a.shape[0])) / v.sum())


def _paths(num_states: int, length: int):
  if num_states ** length > 10 ** 6:
    raise ValueError(f"{num_states}^{length} paths are too many to enumerate (keep T <= 6)")
  return np.array(list(itertools.product(range(num_states), repeat=length)), dtype=int)


def _path_probabilities(initial, transition, emission, symbols):
  a, e = _arrays(transition, emission)
  p0 = np.asarray(initial, dtype=np.float64)
  y = np.asarray(symbols, dtype=int)
  paths = _paths(a.shape[0], len(y))  # [P, T]
  joint = p0[paths[:, 0]] * e[paths[:, 0], y[0]]
  for t in range(1, len(y)):
    joint = joint * a[paths[:, t - 1], paths[:, t]] * e[paths[:, t], y[t]]
  return paths, joint


def enumerate_loglik(initial, transition, emission, symbols) -> float:
  """log P(y_0..y_{T-1}) = log sum over all M^T state paths of the joint (T <= 6)."""
  _, joint = _path_probabilities(initial, transition, emission, symbols)
  with np.errstate(divide="ignore"):
    return float(np.log(joint.sum()))


def enumerate_posterior_marginals(initial, transition, emission, symbols) -> np.ndarray:
  """P(s_t = i | y_0..y_{T-1}) by enumeration over all paths: [T, M]."""
  paths, joint = _path_probabilities(initial, transition, emission, symbols)
  num_states = np.asarray(transition).shape[0]
  out = np.zeros((paths.shape[1], num_states))
  for t in range(paths.shape[1]):
    np.add.at(out[t], paths[:, t], joint)
  return out / joint.sum()
