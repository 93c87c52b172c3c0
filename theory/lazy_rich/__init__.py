"""Closed forms and reduced ODEs for lazy vs rich learning, one module per paper."""
