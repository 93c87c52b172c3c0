"""jaxlab: theory-driven models of learning as small, pure, composable JAX functions.

`jaxlab.core` is the engine every study shares; each model family lives in its own subpackage
(`jaxlab.deep_linear`, ...). Closed-form predictions live in the separate top-level `theory` package.
"""

__version__ = "0.1.0"
