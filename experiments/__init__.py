"""Experiment entrypoints: one folder per study (thin absl `main.py`, `config.py` with variants)."""
