# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags
#     notebook_metadata_filter: kernelspec,language_info,simpsons,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # The Simpsons character study on Kaggle or Colab
#
# [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/OWNER/simpsons-study/blob/main/notebooks/run_on_kaggle_or_colab.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/simpsons-study/blob/main/notebooks/run_on_kaggle_or_colab.ipynb)
#
# Run every cell. This notebook clones the study at `REF` (pin a commit), installs its library into this
# notebook's Python (its torch and torchvision are kept, never replaced), finds the competition's data, runs the
# whole study (one line per epoch of each run below), then shows the evolution of model quality and the
# submission's first rows, and leaves `submission.csv` in the working folder.
#
# - **Kaggle:** turn on a GPU (Settings > Accelerator: GPU T4 x2) and the internet (to clone and install), and add
#   the competition's data (Add Input > Competitions > journey-springfield). The submission lands in
#   `/kaggle/working/submission.csv`, where the notebook's "Submit" takes it.
# - **Colab:** Runtime > Change runtime type > T4 GPU. The data comes with the kaggle CLI and your token: a Colab
#   secret `KAGGLE_API_TOKEN` (or `KAGGLE_USERNAME` and `KAGGLE_KEY`), or `kaggle.json` uploaded to `/content`.
#
# Details: `docs/platforms.md` in the repository.

# %% tags=["parameters"]
REPO_URL: str = "https://github.com/OWNER/simpsons-study"  # the repository (a fork changes OWNER here and in README.md)
REF: str = "main"  # the tag or commit to run: pin one for a run you can reproduce
REPO_DIR: str = ""  # a clone already here, used as it is ("" clones REPO_URL into the working folder)
WORKING_DIR: str = ""  # "" is /kaggle/working on Kaggle, else the current folder
KAGGLE_INPUT: str = "/kaggle/input"  # where Kaggle mounts the competition's data
PROFILE: str = "full"  # params/<profile>: full is the recipe on the Kaggle data

# %% [markdown]
# The clone, with the standard library only (the study's library is not installed yet):

# %%
import subprocess, sys
from pathlib import Path
work = Path(WORKING_DIR or ("/kaggle/working" if Path("/kaggle/working").is_dir() else ".")).resolve()
repo = Path(REPO_DIR).resolve() if REPO_DIR else work / "simpsons-study"
if not (repo / "pyproject.toml").is_file():
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", "--", REPO_URL, str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "checkout", "--quiet", REF, "--"], check=True)
sys.path.insert(0, str(repo))

# %% [markdown]
# The library and its missing dependencies, into this Python; torch and torchvision stay as they are (below the
# minimum version this stops and says which; above the tested range it warns and goes on):

# %%
from simpsons_lib.pipeline import platform
where = platform.detect()
platform.install(repo, stamp=repo / ".system-python-setup-complete")

# %%
data = platform.find_data(where, KAGGLE_INPUT)

# %% [markdown]
# The whole study, as `make all` runs it (for the `full` profile on a T4, about an hour by an estimate, not measured:
# `docs/platforms.md` says how it was made):

# %%
platform.run_study(repo, PROFILE)

# %%
submission = platform.show_results(repo, PROFILE, work)
