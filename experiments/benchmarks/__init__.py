"""``collapse-bench``: how fast the engine runs, against plain numpy and PyTorch.

benchmark.py (the command line and the closed-form and kernel sweeps), reference.py
(the numpy references), transformer.py (the transformer world's training against
PyTorch), report.py (benchmark.md and the scaling plot), machine.py (what the JSON
records of the machine), timing.py (best-of timing and profiles).  A run writes
benchmark.json, benchmark.md and scaling.png / .pdf into this folder by default.
"""
