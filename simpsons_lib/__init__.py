"""Shared library of the Simpsons character study.

One module per concern: ``paths`` (where things live), ``data`` (finding and indexing the Kaggle
layout, splits, datasets), ``image_cache`` (decode-once uint8 arrays), ``parallel`` (work over many
files on every core), ``demo_data`` (the drawn stand-in dataset), ``kaggle_download`` (``make data``),
``transforms``, ``models``, ``train``, ``evaluate``, ``plots``, ``submission``, ``params``
(validation), ``pipeline`` (papermill runs, HTML).
"""

__version__ = "0.1.0"
