import os

# Tests run on the CPU in float64 unless a test says otherwise; a GPU is never needed.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as experiments/main.py: small matrices, shared cores
# LLVM's optimisations off (as run.compile_effort=fast): compiling is most of a small test's time,
# and the numbers the tests check change by float rounding at most (README, Sweeps).
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")

# The tests' compiled programs go to a folder of their own, never the user's cache (a program
# stored by an earlier test run would skip the compiling a test may look for).
if "COLLAPSE_SIM_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["COLLAPSE_SIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="collapse_sim_tests_")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
