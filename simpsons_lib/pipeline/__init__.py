"""The pipeline behind ``make``: plan and preflight, the record of what must be redone, manifests, the
kernel, progress lines in the terminal, the Kaggle CLI (download and submit) and the drawn demo data's
generator. Shapes no weights."""
