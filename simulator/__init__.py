"""Iterative model-collapse simulator: model n is trained on data produced by model n-1."""
