"""``python -m collapse_sim``: the ``collapse-sim`` command line."""

from collapse_sim.experiments.main import main

if __name__ == "__main__":
    main()
