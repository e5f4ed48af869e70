"""Runs at the start of every child process of a safeset process that hid mismatched torch
extensions (pipeline.torch_variants puts this folder on the children's PYTHONPATH): vLLM inspects
models and runs its engine in fresh interpreters, which must hide them too."""

import pipeline  # noqa: F401  (hides them on import)
