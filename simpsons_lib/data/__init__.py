"""The data: the Kaggle layout, the index and split, the decode-once image cache, datasets and loaders'
sources. Shapes the weights (part of every run's training key)."""
