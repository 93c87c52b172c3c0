"""Dynamical-systems views of attention: linear attention as an RNN, attention as associative memory,
self-attention as interacting particles, and in-context learning by gradient descent.

Modules are imported as submodules (`from jaxlab.attention_dynamics import particles`).
"""
