"""``python -m collapse_sim``: the ``collapse-sim`` command line."""

from collapse_sim.experiments.main import cli

if __name__ == "__main__":
    cli()
