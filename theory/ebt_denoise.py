r"""Exact denoisers for Gaussian data: the references for `jaxlab.ebt.denoise`.

Observation model $x = y + \sigma\epsilon$, $\epsilon \sim N(0, I)$. If the clean images are
Gaussian, $y \sim N(\mu, \Sigma)$ (for real images: the training mean and covariance), with
$\Sigma = U \operatorname{diag}(\lambda) U^\top$. Derivations are ours; the ODE is Song et al.
2021 ("Score-based generative modeling through SDEs", ICLR), eq. 13, in variance-exploding form.

  posterior mean  $E[y | x] = \mu + \Sigma(\Sigma + \sigma^2 I)^{-1}(x - \mu)$: the Wiener
                  filter, the best linear denoiser for any data with that mean and covariance
                  (its mean squared error per pixel is $\frac1P \sum_i \lambda_i\sigma^2 /
                  (\lambda_i + \sigma^2)$), and the exact MMSE denoiser when the data is Gaussian.
  noise oracle    at level s, $E[\epsilon | x_s] = s(\Sigma + s^2 I)^{-1}(x_s - \mu)$, the target
                  of the diffusion loss $\|\hat\epsilon - \epsilon\|^2$.
  DDIM            $x_{s_{i+1}} = x_{s_i} + (s_{i+1} - s_i)\hat\epsilon(x_{s_i}, s_i)$ with the clean
                  estimate $x_{s_i} - s_i\hat\epsilon$ at each level: an Euler step of the
                  probability-flow ODE $dx/ds = \hat\epsilon(x, s)$. With the oracle and one step
                  (s = sigma -> 0) the estimate is the posterior mean. The ODE itself maps $x_\sigma$
                  to $\mu + U\operatorname{diag}(\sqrt{\lambda_i/(\lambda_i + \sigma^2)})U^\top
                  (x_\sigma - \mu)$ at s = 0 (in each eigendirection $dc/ds = s c/(\lambda + s^2)$,
                  so $c \propto \sqrt{\lambda + s^2}$), which the N-step estimate approaches as
                  O(1/N) (Euler) for N -> infinity.
"""

import jax.numpy as jnp


def wiener_denoise(x_BxP, mean_P, cov_PxP, sigma):
  """Posterior mean E[y | x] of Gaussian data (the linear MMSE denoiser for any data)."""
  p = mean_P.shape[0]
  gain = jnp.linalg.solve(cov_PxP + sigma ** 2 * jnp.eye(p), cov_PxP)  # symmetric: = its transpose
  return mean_P[None] + (x_BxP - mean_P[None]) @ gain


def wiener_mse(cov_PxP, sigma):
  """Expected squared error per pixel of `wiener_denoise` (the data need not be Gaussian)."""
  lam = jnp.clip(jnp.linalg.eigvalsh(cov_PxP), 0.0, None)
  return jnp.mean(lam * sigma ** 2 / (lam + sigma ** 2))


def noise_oracle(x_BxP, s, mean_P, cov_PxP):
  """E[eps | x_s] for x_s = y + s eps with Gaussian y: the exact noise predictor at level s."""
  p = mean_P.shape[0]
  return s * jnp.linalg.solve(cov_PxP + s ** 2 * jnp.eye(p), (x_BxP - mean_P[None]).T).T


def probability_flow_map(x_BxP, mean_P, cov_PxP, sigma):
  """Where the probability-flow ODE, run from level sigma to 0 with the exact noise predictor,
  takes x: mu + U diag(sqrt(lam / (lam + sigma^2))) U^T (x - mu)."""
  lam, u = jnp.linalg.eigh(cov_PxP)
  lam = jnp.clip(lam, 0.0, None)
  scale = jnp.sqrt(lam / (lam + sigma ** 2))
  return mean_P[None] + ((x_BxP - mean_P[None]) @ u) * scale[None] @ u.T
