"""Standard normal draws equal to ``jax.random.normal``'s, with a faster float64 inverse error function.

``jax.random.normal(key, shape, dtype)`` is √2·erfinv(u) with u = ``jax.random.uniform(key, shape, dtype,
nextafter(-1, 0), 1)`` (``_normal_real`` in jax's random module).  ``normal`` draws the same u from the same key
and, for float64, maps it through the inverse error function of

    M. Giles, "Approximating the erfinv function", GPU Computing Gems Jade Edition, ch. 10 (2011),
    double-precision version:  w = -log((1 - x)(1 + x)),
        w < 6.25:  erfinv(x) = x · P1(w - 3.125)     P1 of degree 22 (23 coefficients)
        w < 16:    erfinv(x) = x · P2(√w - 3.25)     P2 of degree 18
        otherwise: erfinv(x) = x · P3(√w - 5)        P3 of degree 16

XLA's ``erf_inv`` uses the same polynomials but picks each coefficient by a select and takes w from
log1p(-x²); here the three polynomials run with constant coefficients and one select picks the branch.  The
logarithm is fdlibm's ``e_log.c`` (Sun Microsystems, 1993) without its special cases, in the form of musl's
``log.c``: y = 2^k·(1+f) with √2/2 ≤ 1+f < √2, read from the exponent bits; s = f/(2+f);
log y = k·ln2_hi + (f - f²/2 + s·(f²/2 + R(s²)) + k·ln2_lo), R a Remez polynomial of degree 14 in s
(error < 2^-58.45), result within 1 ulp.  It is vectorised code, where XLA's float64 ``log`` on the CPU is a
libm call per element (LLVM scalarises its vector log).  Timings: experiments/benchmarks/normal_speed.py.

Every float64 draw equals ``jax.random.normal``'s to within the error of XLA's ``erf_inv``, which rounds x·x in
log1p(-x·x) and so is off by up to 2^-55/(1 - x²) relative: 7.1e-12 at most against scipy's erfinv over 8·10⁶
draws, where this one is off by 7.5e-16 (6 ulp) at most (tests/test_normal.py derives its tolerance from this).
Other dtypes return ``jax.random.normal`` itself (its float32 erf_inv is a 9-term polynomial with a vectorised log).
"""

from __future__ import annotations

import contextlib
import contextvars
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

# Giles (2011), the double-precision code listed in the paper, highest degree first (Horner order):
# P1 for w < 6.25 in w - 3.125, P2 for w < 16 in √w - 3.25, P3 beyond in √w - 5.
_P1 = (-3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18, 1.115787767802518096e-17,
       -1.333171662854620906e-16, 2.0972767875968561637e-17, 6.6376381343583238325e-15, -4.0545662729752068639e-14,
       -8.1519341976054721522e-14, 2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
       1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08, 4.2347877827932403518e-07,
       -1.3654692000834678645e-06, -1.3882523362786468719e-05, 0.0001867342080340571352, -0.00074070253416626697512,
       -0.0060336708714301490533, 0.24015818242558961693, 1.6536545626831027356)
_P2 = (2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07, 1.8239629214389227755e-08,
       1.5027403968909827627e-06, -4.013867526981545969e-06, 2.9234449089955446044e-06, 1.2475304481671778723e-05,
       -4.7318229009055733981e-05, 6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
       0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066, -0.0037512085075692412107,
       0.005370914553590063617, 1.0052589676941592334, 3.0838856104922207635)
_P3 = (-2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09, -3.7894654401267369937e-09,
       7.6157012080783393804e-09, -1.4960026627149240478e-08, 2.9147953450901080826e-08, -6.7711997758452339498e-08,
       2.2900482228026654717e-07, -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
       7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026, 1.0103004648645343977,
       4.8499064014085844221)

# fdlibm e_log.c: Lg1..Lg7 (R(z) = Lg1·z + ... + Lg7·z⁷, z = s²) and ln 2 split so that k·LN2_HI is exact.
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
       1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_SQRT_HALF_BITS = 0x3FE6A09E00000000  # √2/2 to 20 bits: the exponent shift puts 1+f in [√2/2, √2)
_ONE_BITS = 0x3FF0000000000000
_MANTISSA = 0x000FFFFFFFFFFFFF


def _horner(coefficients, t):
    p = coefficients[0]
    for c in coefficients[1:]:
        p = p * t + c
    return p


def log(y):
    """Natural log of positive, finite, normal float64 ``y`` (fdlibm e_log.c, see the module docstring);
    other inputs (0, subnormals, negatives, inf, nan) give meaningless numbers."""
    bits = jax.lax.bitcast_convert_type(y, jnp.int64) + (_ONE_BITS - _SQRT_HALF_BITS)
    k = ((bits >> 52) - 0x3FF).astype(y.dtype)
    f = jax.lax.bitcast_convert_type((bits & _MANTISSA) + _SQRT_HALF_BITS, y.dtype) - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6]))) + w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    hfsq = 0.5 * f * f
    return s * (hfsq + r) + k * _LN2_LO - hfsq + f + k * _LN2_HI


@partial(jax.jit, static_argnames="log_fn")
def erfinv(x, log_fn=log):
    """Inverse error function of float64 ``x`` (Giles 2011, see the module docstring); ±inf at ±1, nan outside.
    ``log_fn``: the logarithm it uses (``jnp.log`` to compare with XLA's)."""
    w = -log_fn((1.0 - x) * (1.0 + x))
    sqrt_w = jnp.sqrt(w)
    p = jnp.where(w < 6.25, _horner(_P1, w - 3.125),
                  jnp.where(w < 16.0, _horner(_P2, sqrt_w - 3.25), _horner(_P3, sqrt_w - 5.0)))
    inside = jnp.abs(x) < 1.0
    return jnp.where(inside, p * x, jnp.where(jnp.abs(x) == 1.0, x * jnp.inf, jnp.nan))


def _is_float64(dtype) -> bool:
    try:
        return jax.dtypes.canonicalize_dtype(float if dtype is None else dtype) == np.float64
    except TypeError:
        return False


_XLA_ERFINV = contextvars.ContextVar("xla_erfinv", default=False)


@contextlib.contextmanager
def xla_erfinv(on: bool = True):
    """While tracing inside it, :func:`normal` is ``jax.random.normal`` itself.  For programs
    compiled with LLVM's optimisations off (``run.compile_effort=fast``): there the polynomials
    above are no faster to run than XLA's ``erf_inv`` and only add to the compile time."""
    token = _XLA_ERFINV.set(on)
    try:
        yield
    finally:
        _XLA_ERFINV.reset(token)


def normal(key, shape=(), dtype=None):
    """``jax.random.normal(key, shape, dtype)``: the same uniform draws, float64 mapped by ``erfinv`` above."""
    if not _is_float64(dtype) or _XLA_ERFINV.get():
        return jax.random.normal(key, shape, dtype)
    lo = np.nextafter(-1.0, 0.0)
    u = jax.random.uniform(key, shape, jnp.float64, lo, 1.0)
    return np.sqrt(2.0) * erfinv(u)
