"""Language models used by the text worlds: an n-gram model and a Flax NNX transformer."""
