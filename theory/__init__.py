"""Closed forms and reduced ODEs, one module per model family, as pure jnp functions.

`theory` never imports `jaxlab`: the tests hold the two derivations side by side.
"""
