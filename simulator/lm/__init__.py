"""Language models of the text worlds: the interface a world needs (interface.py), an
n-gram model (ngram.py, its count tables in ngram_counts.py), a Flax NNX transformer
(transformer.py, train.py, sample.py), its pretraining and model card (pretrain.py,
model_card.py, checkpoint_io.py), and ToEdit's token edit rule (toedit.py)."""
