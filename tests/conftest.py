import os

# Tests run on the CPU in float64 unless a test says otherwise; a GPU is never needed.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as experiments/main.py: small matrices, shared cores

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
