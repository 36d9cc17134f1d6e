"""Training: models, transforms, devices, optimizers and schedules, the loop, checkpoints and the export,
the one prediction loop and the metrics, and the run wiring. Shapes the weights (part of every run's
training key)."""
