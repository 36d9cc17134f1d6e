"""Using trained models: predictions for any image files or folders, ensembles, and the submission."""
