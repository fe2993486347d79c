"""Hydra entry point, structured configs and benchmarks."""
