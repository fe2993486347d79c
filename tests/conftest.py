import os

# Tests run on the CPU in float64 unless a test says otherwise; a GPU is never needed.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
