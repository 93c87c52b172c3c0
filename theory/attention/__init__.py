"""Closed forms for the dynamical-systems views of attention, one module per topic."""
