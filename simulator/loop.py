"""The generation loop: model n is trained on data produced by model n-1.

One generation = build the training set (regime), fit, evaluate.  Generation 0
is fitted on real data; a regime with its own ``fit`` (``Regime.fit``, e.g.
``weighted``) fits generations g >= 1 itself, every other one uses ``world.fit``.
The loop over generations is a ``lax.scan``; seeds run together under ``vmap``;
the whole run is one jit-compiled call.

Keys: seed s uses ``fold_in(root, s)``; generation g of that seed uses
``fold_in(seed_key, g)``.  The random draws therefore do not depend on how
seeds are batched or how generations are chunked; the arithmetic on them may,
by float rounding (the tolerance in README.md, Running).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from collapse_sim.simulator.regimes import Regime
from collapse_sim.simulator.world import World


class Carry(NamedTuple):
    """What one seed carries from generation to generation (a pytree).

    truth: the seed's real world (``world.init``); params: model g, the newest
    fit; params0: the generation-0 model (some worlds fine-tune from it, some
    regimes edit with it); state: the regime's own state (a pool, masks, ...)."""

    truth: Any
    params: Any
    params0: Any
    state: Any


class Generation(NamedTuple):
    """Per-seed pure functions: ``first(seed_key) -> (carry, record)`` fits
    generation 0; ``chunk(carry, seed_key, gens) -> (carry, records)`` runs the
    generations listed in ``gens`` (an int array) with a ``lax.scan``;
    ``run(carry, seed_key, gens, start) -> (carry, record0, records)`` is both in one
    program: with ``start`` it fits generation 0 first (``carry`` is then only a
    placeholder of the right shape), and it skips the entries of ``gens`` below 1
    (their records are zeros), so one compiled program runs every chunk of a run."""

    first: Callable
    chunk: Callable
    run: Callable


def make_generation(world: World, regime: Regime) -> Generation:
    fit = regime.fit if regime.fit is not None else world.fit

    def inspect(truth, params0, rows):
        return world.inspect(truth, params0, rows) if world.inspect is not None else {}

    def first_raw(seed_key):
        k_truth, k_real, k_regime, k_fit = jax.random.split(jax.random.fold_in(seed_key, 0), 4)
        truth = world.init(k_truth)
        real = world.real(k_real, truth, 0)
        params0 = world.fit(k_fit, regime.initial_train(real), None)
        state = regime.init(k_regime, truth, real, params0)
        return Carry(truth, params0, params0, state), {**world.evaluate(truth, params0), **inspect(truth, params0, real)}

    def one(carry, seed_key, g):
        truth, params, params0, state = carry.truth, carry.params, carry.params0, carry.state
        k_regime, k_fit = jax.random.split(jax.random.fold_in(seed_key, g))
        train, state, stats = regime.step(k_regime, state, truth, params, g)
        params = fit(k_fit, train, params0)
        record = {**world.evaluate(truth, params), **inspect(truth, params0, train), **stats}
        return Carry(truth, params, params0, state), record

    def first(seed_key):
        carry, metrics = first_raw(seed_key)
        # Regime statistics do not exist at generation 0; record zeros there.
        _, rec_shape = jax.eval_shape(one, carry, seed_key, jnp.int32(1))
        zeros = zeros_like({k: v for k, v in rec_shape.items() if k not in metrics})
        return carry, {**metrics, **zeros}

    def chunk(carry, seed_key, gens):
        return jax.lax.scan(lambda c, g: one(c, seed_key, g), carry, gens)

    def run(carry, seed_key, gens, start):
        like_rec0 = jax.eval_shape(first, seed_key)[1]
        carry, rec0 = jax.lax.cond(start, lambda c: first(seed_key), lambda c: (c, zeros_like(like_rec0)), carry)
        like_rec = jax.eval_shape(one, carry, seed_key, jnp.int32(1))[1]

        def body(c, g):
            return jax.lax.cond(g >= 1, lambda c: one(c, seed_key, g), lambda c: (c, zeros_like(like_rec)), c)

        carry, recs = jax.lax.scan(body, carry, gens)
        return carry, rec0, recs

    return Generation(first, chunk, run)


def zeros_like(shapes):
    """Zeros of the shapes and dtypes of a pytree of arrays or ``ShapeDtypeStruct``s."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def seed_keys(root: jax.Array, seeds) -> jax.Array:
    """Keys of the given seed indices; seed s always gets ``fold_in(root, s)``."""
    return jax.vmap(lambda s: jax.random.fold_in(root, s))(jnp.asarray(seeds, jnp.uint32))


def make_simulate(world: World, regime: Regime, n_generations: int) -> Callable:
    """``simulate(keys) -> records``: all generations for a batch of seed keys in
    one compiled call; each record has shape (S, G+1)."""
    gen = make_generation(world, regime)
    gens = jnp.arange(1, n_generations + 1, dtype=jnp.int32)

    def run(seed_key):
        carry, rec0 = gen.first(seed_key)
        _, recs = gen.chunk(carry, seed_key, gens)
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), rec0, recs)

    return jax.jit(jax.vmap(run))
