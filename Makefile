# pdebench: every setup step a fresh machine needs. `make quickstart` and `make test` are the two entry points.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch installed before the project, so pip never pulls a multi-GB CUDA build. On a GPU machine:
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
PRESET ?= small
# `make datasets` generates every PDE with a config in conf/pde/ unless PDES names some (PDES="ks smoke").
PDES ?= $(sort $(basename $(notdir $(wildcard conf/pde/*.yaml))))
DATA ?= data
# Extra pytest arguments for `make test`, e.g. PYTEST_ARGS="--ignore=tests/cluster" (no SLURM cluster).
PYTEST_ARGS ?=
export MPLBACKEND ?= Agg

.PHONY: setup setup-bench test test-fast lint quickstart datasets train evaluate leaderboard bench clean mutate \
	slurm-local slurm-local-stop tune tune-ks leaderboard-ks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	# interop: the_well, whose WellDataset reads the exports in tests/test_interop.py (pyproject.toml)
	$(BIN)/python -m pip install --quiet -e ".[test,interop]"
	touch $@

setup: $(VENV)/.installed

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@

setup-bench: $(VENV)/.installed-bench

# ruff, then the import layers of pyproject.toml ([tool.importlinter]; docs/architecture.md).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Both run on one pytest-xdist worker per logical core (WORKERS=0 runs them in this process), each worker's torch on
# one thread (tests/conftest.py). Whole files go to one worker, so a module's fixtures are built once and the cluster
# tests (one file) share one SLURM cluster.
WORKERS ?= logical
test: setup lint
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile $(PYTEST_ARGS)

# The inner loop: lint (a few seconds) and every test not marked slow or cluster, every module still exercised
# (docs/testing.md; scripts/check_fast_tests.py checks that). `make test` runs them all.
test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow and not cluster" -n $(WORKERS) --dist loadfile $(PYTEST_ARGS)

quickstart: setup
	$(BIN)/pdebench-generate pde=ks preset=small root=$(DATA)
	$(BIN)/pdebench-train experiment=ks_fno_quickstart data.root=$(DATA)
	$(BIN)/pdebench-evaluate ckpt=runs/ks-small/fno-quickstart/seed0/checkpoints/best.ckpt data.root=$(DATA)
	$(BIN)/pdebench-evaluate model=persistence data=ks data.root=$(DATA)
	$(BIN)/pdebench-evaluate model=solver data=ks data.root=$(DATA)
	$(BIN)/pdebench-leaderboard

# Every split of each PDE on every core (progress bars: trajectories done, ETA); ARGS adds overrides, e.g.
# ARGS="device=cuda" or ARGS="workers=4". Rerunning resumes an interrupted dataset and keeps finished ones.
datasets: setup
	for pde in $(PDES); do $(BIN)/pdebench-generate pde=$$pde preset=$(PRESET) root=$(DATA) $(ARGS) || exit 1; done

train: setup
	$(BIN)/pdebench-train $(ARGS)

evaluate: setup
	$(BIN)/pdebench-evaluate $(ARGS)

leaderboard: setup
	$(BIN)/pdebench-leaderboard $(ARGS)

# The Kuramoto-Sivashinsky leaderboard end to end (pdebench-board ks, conf/board/ks.yaml; docs/leaderboard.md):
# generates ks-small if missing, evaluates persistence and the solver, trains every entry on one budget, evaluates
# each on the test split and writes leaderboard/ks/. Rerunning resumes: entries with a result are skipped, a killed
# training resumes. SCALE=paper: the reference widths and PDE-Refiner's training length, for GPUs; LAUNCHER=slurm
# (or slurm_cpu) sends the training and evaluation jobs to a SLURM cluster as Hydra multiruns.
SCALE ?= cpu
LAUNCHER ?=
leaderboard-ks: setup
	$(BIN)/pdebench-board ks --scale $(SCALE) --root $(DATA) $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(ARGS)

# Tune every learned row of one dataset alike: an Optuna search of TRIALS trials per row over optim.lr and
# optim.weight_decay, each winner recorded in conf/tuned/$(DATASET).yaml for the row's later runs (docs/recipes.md).
# `make tune-ks`: the KS rows at the CPU width (a quarter of each reference width: 16, MP-PDE 32); hours on a CPU.
TRIALS ?= 20
DATASET ?= ks
tune: setup
	$(BIN)/pdebench-tune $(DATASET) --trials $(TRIALS) data.root=$(DATA) $(ARGS)

tune-ks: setup
	$(BIN)/pdebench-tune ks --trials $(TRIALS) --width-scale 0.25 data.root=$(DATA) $(ARGS)

bench: setup-bench
	$(BIN)/python scripts/bench_datagen.py --pde all
	$(BIN)/python scripts/bench_datagen_smoke.py
	$(BIN)/python scripts/bench_datagen_swe.py
	$(BIN)/python scripts/bench_datagen_cores.py
	$(BIN)/python scripts/bench_models.py
	$(BIN)/python scripts/bench_training.py
	$(BIN)/python scripts/bench_eval.py
	$(BIN)/python scripts/bench_config_check.py
	$(BIN)/python scripts/bench_startup.py

# Keeps the committed KS board (leaderboard/ks/: make leaderboard-ks rebuilds it, resuming from runs/ if present).
clean:
	rm -rf runs results .pytest_cache .ruff_cache
	if [ -d leaderboard ]; then find leaderboard -mindepth 1 -maxdepth 1 ! -name ks -exec rm -rf {} +; fi

# Mutation testing (mutmut), each module of the table in scripts/mutate.py against its own tests; slow, so
# neither `test` nor CI runs it. `make mutate MODULES="writer normalization"` limits it to some modules.
$(VENV)/.installed-mutate: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,mutate]"
	touch $@

mutate: $(VENV)/.installed-mutate
	$(BIN)/python scripts/mutate.py $(MODULES)

# A one-node SLURM cluster on this machine (root; installs Debian's slurmctld, slurmd, slurm-client and munge when
# missing), to try `-m hydra/launcher=slurm_cpu` sweeps: `make slurm-local`, then `export SLURM_CONF=...` as printed.
SLURM_LOCAL ?= .slurm-local
slurm-local:
	$(PYTHON) scripts/slurm_local.py start --dir $(SLURM_LOCAL)

slurm-local-stop:
	$(PYTHON) scripts/slurm_local.py stop --dir $(SLURM_LOCAL)
