"""Parameters (schema, allowed values, resolution from params/), paths, atomic files and console output.
Torch-free: the plan step and ``make data``'s credential check import only this wing."""
