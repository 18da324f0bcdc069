"""Mutation testing with mutmut, one module at a time against that module's own tests (`make mutate`).

mutmut changes one small thing in the code (an operator, a constant, a string, an argument) and reruns the
tests; a *surviving* mutant is a change no test noticed: either a gap in the tests or an equivalent change.
It is slow, so it is not part of `make test` nor of CI; run it after changing a module or its tests.

`MODULES` below is the one table of what is mutated and by which tests. For each entry the driver makes a
private working directory `.mutmut/<name>/` (ignored by git) holding links to the source packages, the test
directory and `conf/`, plus a `pyproject.toml` built from this repository's `[tool.pytest.ini_options]` and
`[tool.mutmut]` with two settings added for that entry: `only_mutate` (the entry's files) and
`pytest_add_cli_args_test_selection` (the entry's test files). mutmut then copies the packages into
`.mutmut/<name>/mutants/`, mutates only the entry's files and, for each mutant, runs only those of the
entry's tests that call the mutated function, with `-x` (stop at the first failure) and a timeout of
`(duration of those tests + timeout_constant) * timeout_multiplier` seconds (see `[tool.mutmut]`).

Every mutant runs in a fresh pytest session, so session fixtures are rebuilt per mutant, and the timeout counts
only the tests' call time, not their fixtures' setup. An entry's `deselect` therefore leaves out of its mutation
run the tests that need `trained_checkpoint` (tests/conftest.py trains an FNO for it: 10-20 s on a quiet machine,
minutes on a busy one) or train themselves; they stay in the normal suite, and faster tests cover the same code
for mutmut. An entry's `keep_lines` (regular expressions, mutmut's `do_not_mutate_patterns`) leaves lines
unmutated: mutmut's start-up check makes every mutated function raise and expects a test to fail, but a function
that runs while tests/conftest.py is imported (`dealias_cutoff`, through the Hydra config schemas) then breaks
pytest itself and mutmut stops. An entry's `data` names committed files its tests read (the published board's
pages): mutmut runs the tests in `mutants/`, so they are copied there beside `conf/`.

Every run starts from scratch (mutmut would otherwise keep the verdicts of a previous run even after the
tests changed); `--resume` continues an interrupted run instead. Entries whose files or tests do not exist
yet are skipped with a note, so the table can name modules before they are written.

Prints, per module: mutants in total, killed, survived, timed out (and any other outcome), the kill rate,
and every surviving mutant as `file:line`, its name and the changed lines. The full diff of one mutant:
`cd .mutmut/<name> && mutmut show <mutant name>`.

Usage: python scripts/mutate.py [NAME ...] [--list] [--resume] [--max-children N]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut depends on `toml` there, which has the same `loads`
    import toml as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
WORK_DIR = REPO / ".mutmut"


@dataclass(frozen=True)
class Module:
    """Files (or package directories) to mutate and the test files that are meant to catch their mutants."""

    sources: tuple[str, ...]
    tests: tuple[str, ...]
    deselect: tuple[str, ...] = ()  # test node ids (or prefixes) left out of the mutation run, kept in `make test`
    keep_lines: tuple[str, ...] = ()  # regexes of source lines never mutated (see the module docstring)
    data: tuple[str, ...] = ()  # committed files or folders the tests read (copied beside the mutants, as `conf/`)


# Tests that train (or use the FNO tests/conftest.py trains once per session): far too slow to rerun per mutant.
TRAINING_TESTS = (
    "tests/test_rollout.py::test_batch_size_does_not_change_a_trained_nets_scores",
    "tests/test_evaluate.py::test_result_identity_comes_from_the_checkpoint",
    "tests/test_evaluate.py::test_a_contradiction_of_the_checkpoint_names_both_values",
    "tests/test_evaluate.py::test_values_that_agree_with_the_checkpoint_are_accepted",
    "tests/test_evaluate.py::test_a_trained_model_beats_persistence_on_the_tiny_preset",
    "tests/test_evaluate.py::test_a_run_folder_stands_for_its_best_checkpoint",
    "tests/test_eval_distributed.py::test_uneven_shards_joined_equal_one_pass_for_a_trained_net",
    "tests/test_eval_distributed.py::test_batch_sizes_8_and_5_give_equal_result_files",
    "tests/test_eval_distributed.py::test_two_gloo_processes_write_the_result_file_of_one",
    "tests/test_training.py::test_statistics_come_from_the_train_split_only",
    "tests/test_training.py::test_checkpoint_loads_with_weights_only_and_carries_its_run_record",
    "tests/test_training.py::test_rerunning_the_command_resumes_from_last_ckpt",
    "tests/test_two_d.py::test_train_evaluate_and_rank_a_2d_fno",
)

# Tests of the whole zoo that build every model at its reference size for every dataset (10-30 s each): one model's
# mutants are judged by its own tests and the registry-wide tests of tests/test_models.py that build tiny nets.
ZOO_TESTS = (
    "tests/test_models.py::test_zoo_counts_are_the_reference_configs_built_for_each_dataset",
    "tests/test_models.py::test_every_trainable_model_has_a_preset_on_every_dataset_it_serves",
    "tests/test_models.py::test_pdebench_models_prints_grids_and_reference_parameter_counts",
    "tests/test_models.py::test_reference_table_holds_every_published_count",
)

# Tests that train a small net for hundreds of steps (10-20 s each, minutes under load): a surviving mutant would rerun
# them all; the hand-computed tests next to them judge the same code.
OVERFIT_TESTS = (
    "tests/test_unet_sinenet.py::test_overfits_one_tiny_batch",
    "tests/test_fno.py::test_fno_overfits_one_tiny_batch",
    "tests/test_fno.py::test_sfno_overfits_one_tiny_batch",
    "tests/test_pderefiner.py::test_overfits_one_tiny_batch",
)

# DYffusion's tests that train a net (for hundreds of steps, both stages, or through `trained_checkpoint`)
DYFFUSION_TRAINING_TESTS = (
    "tests/test_dyffusion.py::test_dyffusion_overfits_a_tiny_batch",
    "tests/test_dyffusion.py::test_both_stages_train_in_one_run_and_evaluate_with_an_ensemble",
    "tests/test_dyffusion.py::test_a_frozen_sub_network_of_another_dataset_or_shape_is_refused",
)

# The one table: name -> what is mutated and which tests judge it. Paths are relative to the repository root.
MODULES: dict[str, Module] = {
    "normalization": Module(("pdebench/data/normalization.py",), ("tests/test_normalization.py",)),
    "writer": Module(("pdebench/data/writer.py",), ("tests/test_writer.py", "tests/test_data_schema.py")),
    # --- rollout, forecast, training, leaderboard, commands ---
    # per-step metrics on one frame pair, against the hand-computed values of test_metrics (test_rollout scores
    # through them too, on datasets: minutes per mutant on a busy machine, so it judges `scoring` only)
    "step_metrics": Module(("pdebench/rollout/step_metrics.py",), ("tests/test_metrics.py",)),
    # summaries of per-step scores over trajectories, their bootstrap intervals and the horizon statistics
    "reductions": Module(
        ("pdebench/rollout/reductions.py",),
        ("tests/test_metrics.py", "tests/test_intervals.py", "tests/test_ensemble_eval.py",
         "tests/test_result_record.py", "tests/test_conventions.py"),  # test_conventions: The Well's windows
    ),
    "spectra": Module(("pdebench/rollout/spectra.py",), ("tests/test_metrics.py",)),
    # rolling a stepper out over a test split and scoring every step (test_two_d: area-weighted sphere cells)
    "scoring": Module(
        ("pdebench/rollout/scoring.py",),
        ("tests/test_rollout.py", "tests/test_metrics.py", "tests/test_conserved_fields.py",
         "tests/test_eval_distributed.py", "tests/test_two_d.py"),
        deselect=TRAINING_TESTS,
    ),
    # the cost-accuracy frontier of a result file's rows
    "frontier": Module(
        ("pdebench/rollout/frontier.py",), ("tests/test_metrics.py", "tests/test_evaluate.py"), deselect=TRAINING_TESTS
    ),
    # the `evaluate` command's work: checkpoint -> scored result file (config.py is its typed settings)
    "evaluation": Module(
        ("pdebench/rollout/evaluation.py", "pdebench/rollout/config.py"),
        ("tests/test_evaluate.py", "tests/test_ensemble_eval.py", "tests/test_eval_distributed.py",
         "tests/test_result_sample.py"),
        deselect=TRAINING_TESTS,
    ),
    # what a result file holds, its keys, its record and how it is written and read back
    "results": Module(
        ("pdebench/rollout/results.py", "pdebench/rollout/record.py", "pdebench/rollout/result_content.py",
         "pdebench/rollout/keys.py", "pdebench/rollout/__init__.py"),
        ("tests/test_result_record.py", "tests/test_result_sample.py", "tests/test_metrics.py",
         "tests/test_evaluate.py", "tests/test_leaderboard.py"),
        deselect=TRAINING_TESTS,
    ),
    # result files -> ranked tables (loading, the tables, the build driver, its settings)
    "leaderboard_tables": Module(
        ("pdebench/leaderboard/tables.py", "pdebench/leaderboard/build.py", "pdebench/leaderboard/loading.py",
         "pdebench/leaderboard/config.py", "pdebench/leaderboard/__init__.py"),
        ("tests/test_leaderboard.py", "tests/test_leaderboard_html.py", "tests/hostile/test_leaderboard_inputs.py"),
    ),
    # tables -> the HTML page and the published files
    "leaderboard_html": Module(
        ("pdebench/leaderboard/html.py", "pdebench/leaderboard/render.py", "pdebench/leaderboard/publish.py"),
        ("tests/test_leaderboard_html.py", "tests/test_leaderboard.py", "tests/hostile/test_leaderboard_inputs.py"),
    ),
    "leaderboard_plots": Module(
        ("pdebench/leaderboard/plots.py", "pdebench/leaderboard/figures.py", "pdebench/leaderboard/sample_plot.py"),
        ("tests/test_leaderboard_plots.py", "tests/test_result_sample.py", "tests/test_leaderboard.py"),
    ),
    # what a published board reports beside its tables, and the check that its pages' numbers come from results
    "board_report": Module(("pdebench/leaderboard/board_report.py",), ("tests/test_board.py",),
                           deselect=("tests/test_board.py::test_the_board_pipeline_on_tiny_builds_then_resumes",),
                           data=("leaderboard/ks",)),
    # what a net predicts (state, difference, derivative) and how a step is taken from it
    "targets": Module(("pdebench/forecast/targets.py",), ("tests/test_targets.py", "tests/test_forecast.py")),
    "integrators": Module(("pdebench/forecast/integrators.py",), ("tests/test_forecast.py", "tests/test_targets.py")),
    # the stepper, the forecaster around it, its rollout loop and state, and loading it from a checkpoint
    "forecast": Module(
        ("pdebench/forecast/stepper.py", "pdebench/forecast/forecaster.py", "pdebench/forecast/rollout.py",
         "pdebench/forecast/rollout_state.py", "pdebench/forecast/checkpoint.py", "pdebench/forecast/__init__.py"),
        ("tests/test_forecast.py", "tests/test_rollout.py", "tests/test_evaluate.py", "tests/test_objectives.py"),
        deselect=TRAINING_TESTS,
    ),
    # register_objective runs while the objectives are imported (see the docstring); DYffusion's two objectives
    "objectives": Module(
        ("pdebench/training/objectives.py", "pdebench/training/dyffusion_objectives.py"),
        ("tests/test_objectives.py", "tests/test_forecast.py", "tests/test_dyffusion.py"),
        deselect=(*TRAINING_TESTS, *DYFFUSION_TRAINING_TESTS),
        keep_lines=(r"^        return OBJECTIVES\.add\(name, factory\)$",),
    ),
    "callbacks": Module(
        ("pdebench/training/callbacks.py",), ("tests/test_logs.py", "tests/test_training.py"), deselect=TRAINING_TESTS
    ),
    # the Lightning module, the training run, its stages and settings, tuning; its tests train (no deselection: slow)
    "training": Module(
        ("pdebench/training/module.py", "pdebench/training/run.py", "pdebench/training/stages.py",
         "pdebench/training/config.py", "pdebench/training/tuning.py", "pdebench/training/__init__.py"),
        ("tests/test_training.py", "tests/test_resume.py", "tests/test_objectives.py", "tests/test_logs.py"),
    ),
    # the console scripts and the cluster launcher
    # foreign layouts read in place (The Well, PDEArena/LPSDA KS) and the export to The Well's
    "interop": Module(("pdebench/interop",), ("tests/test_interop.py",)),
    "cli": Module(
        ("pdebench/cli", "pdebench/launch.py"),
        ("tests/test_cli_errors.py", "tests/test_config.py", "tests/test_sweeps.py", "tests/test_logs.py",
         "tests/cluster/test_slurm_requests.py", "tests/test_board.py"),
        deselect=(*TRAINING_TESTS, "tests/test_board.py::test_the_board_pipeline_on_tiny_builds_then_resumes"),
    ),
    # the small shared pieces: errors, the registry type, console output, devices, provenance, exports.
    # Registry.add and __init__ run while the models and objectives register themselves on import.
    "core": Module(
        ("pdebench/__init__.py", "pdebench/errors.py", "pdebench/registry.py", "pdebench/console.py",
         "pdebench/devices.py", "pdebench/provenance.py", "pdebench/exports.py"),
        ("tests/test_models.py", "tests/test_logs.py", "tests/test_conventions.py", "tests/test_evaluate.py"),
        deselect=TRAINING_TESTS,
        keep_lines=(r"^        self\.kind = kind$", r"^        self\._entries(: dict\[str, E\])? = ",
                    r"^        if name in self\._entries:$",
                    r"^            raise ValueError\(f\"\{self\.kind\} \{name!r\} is registered twice\"\)$",
                    r"^        self\._entries\[name\] = entry$", r"^        return entry$"),
    ),
    "spectral": Module(
        ("data_gen/spectral.py",), ("tests/test_spectral.py", "tests/test_ks_solver.py"),
        # dealias_cutoff runs while conftest imports (KSConfig defaults); test_spectral checks its values by hand.
        keep_lines=(r"^    return \(int\(n_points\) - 1\) // 3$",),
    ),
    # the real-to-real transforms of the smoke solver's box (test_spectral against scipy, test_smoke through it)
    "transforms": Module(("data_gen/transforms.py",), ("tests/test_spectral.py", "tests/test_smoke.py")),
    # the generation driver and the modules it runs: the plan, the writing of split files, what a rerun keeps,
    # shards and their merge
    "generate": Module(
        ("data_gen/generate.py", "data_gen/plan.py", "data_gen/writing.py", "data_gen/resume.py", "data_gen/shards.py"),
        ("tests/test_generate.py", "tests/test_generate_scaleout.py", "tests/hostile/test_manifest_and_generation.py"),
    ),
    # Resolved config -> typed objects (the schemas and their checks are the entry `config_schemas`)
    "config": Module(
        ("pdebench/config/loading.py",),
        ("tests/test_config.py", "tests/test_cli_errors.py", "tests/hostile/test_config_and_checkpoints.py"),
        # these two train a model first (the `real_run` fixture)
        deselect=("tests/hostile/test_config_and_checkpoints.py::test_bad_checkpoint_stops_the_command",
                  "tests/hostile/test_config_and_checkpoints.py::test_a_sound_checkpoint_still_resumes"),
    ),
    # --- data and solvers ---
    # the four generators, each against its own tests (they integrate small PDEs: seconds per mutant)
    "ks": Module(("data_gen/ks.py",), ("tests/test_ks_solver.py", "tests/test_solver_settings.py")),
    "kolmogorov": Module(
        ("data_gen/kolmogorov.py",), ("tests/test_kolmogorov.py",),
        # 10-17 s each (a 448-point DNS, a resolution sweep); faster tests of the same functions stay in the run
        deselect=("tests/test_kolmogorov.py::test_solver_rows_do_not_depend_on_the_batch[448]",
                  "tests/test_kolmogorov.py::test_resolution_criterion_fails_on_a_coarse_dns_and_holds_on_a_fine_one"),
    ),
    "smoke": Module(("data_gen/smoke.py",), ("tests/test_smoke.py",)),
    # the spherical solver and the Williamson test cases it is checked on
    "swe": Module(
        ("data_gen/swe.py", "data_gen/williamson.py"), ("tests/test_swe.py",),
        # 9-32 s each (days of simulated flow); the tiny-preset, Williamson and transform tests cover the same code
        deselect=("tests/test_swe.py::test_the_slowest_jets_of_the_small_preset_are_unstable_by_frame_0",
                  "tests/test_swe.py::test_jets_the_preset_draws_keep_98_percent_of_their_drawn_peak_speed_through_"
                  "the_spin_up[paper]",
                  "tests/test_swe.py::test_the_solver_damps_a_zonal_jet_as_the_hyperdiffusion_factor_alone",
                  "tests/test_swe.py::test_energy_drift_without_hyperdiffusion_below_1e_4_over_20_days",
                  "tests/test_swe.py::test_mass_conserved_to_1e_12_relative_for_unstable_jets_with_hyperdiffusion"),
    ),
    # the physical checks of generated files (the validation script's figures)
    "validation": Module(
        ("data_gen/validation",),
        ("tests/test_validate_datasets.py", "tests/test_kolmogorov.py", "tests/test_smoke.py", "tests/test_swe.py"),
    ),
    # the generator registry, its protocol's shared checks and the typed generation settings
    "generators": Module(
        ("data_gen/registry.py", "data_gen/base.py", "data_gen/config.py", "data_gen/__init__.py"),
        ("tests/test_generate.py", "tests/test_conserved_fields.py", "tests/test_solver_settings.py",
         "tests/test_config.py"),
    ),
    # worker processes of a scaled-out generation
    "parallel": Module(("data_gen/parallel.py",), ("tests/test_generate_scaleout.py",)),
    "grid": Module(("pdebench/data/grid.py",), ("tests/test_grid.py", "tests/test_data_schema.py")),
    # the dataset manifest and its identity hash
    "manifest": Module(
        ("pdebench/data/manifest.py",),
        ("tests/test_manifest.py", "tests/test_data_schema.py", "tests/test_dataset.py",
         "tests/hostile/test_manifest_and_generation.py"),
    ),
    "reader": Module(
        ("pdebench/data/reader.py",),
        ("tests/test_data_schema.py", "tests/test_writer.py", "tests/hostile/test_files.py",
         "tests/hostile/test_links_and_headers.py"),
    ),
    "schema": Module(("pdebench/data/schema.py",), ("tests/test_data_schema.py", "tests/test_writer.py")),
    # the file checker and `python -m pdebench.data`
    "check": Module(
        ("pdebench/data/check.py", "pdebench/data/__main__.py"),
        ("tests/test_data_schema.py", "tests/hostile/test_files.py", "tests/hostile/test_links_and_headers.py"),
    ),
    # windows of trajectories, their batches, and what the model is told of its data (netspec)
    "dataset": Module(
        ("pdebench/data/dataset.py", "pdebench/data/batch.py", "pdebench/data/netspec.py",
         "pdebench/data/__init__.py"),
        ("tests/test_dataset.py", "tests/test_preload.py", "tests/test_forecast.py"),
        deselect=TRAINING_TESTS,
    ),
    # writes that never leave a half-written file under its final name, and the run lock
    "atomic": Module(
        ("pdebench/data/atomic.py", "pdebench/data/lock.py"),
        ("tests/test_atomic.py", "tests/hostile/test_train_guards.py", "tests/hostile/test_full_disk.py"),
    ),
    "names": Module(
        ("pdebench/data/names.py",),
        ("tests/hostile/test_names_and_paths.py", "tests/hostile/test_properties.py",
         "tests/hostile/test_leaderboard_inputs.py"),
    ),
    # The schemas and their range checks (tests/compose.py fills Hydra's ConfigStore on the first composition, not
    # while conftest imports, so no `__post_init__` nor check runs before a test does)
    "config_schemas": Module(
        ("pdebench/config/schemas.py", "pdebench/config/checks.py"),
        ("tests/test_config_checks.py", "tests/test_config.py", "tests/test_recipes.py", "tests/test_cli_errors.py"),
    ),
    # tuned recipes and where the config directory is
    "recipes": Module(
        ("pdebench/config/recipes.py", "pdebench/config/location.py", "pdebench/config/__init__.py"),
        ("tests/test_recipes.py", "tests/test_presets.py", "tests/test_config.py"),
    ),
    # --- baselines ---
    # neighbourhood graphs on a Grid (test_mpnn builds them directly and through the net)
    "graphs": Module(("baselines/graphs.py",), ("tests/test_mpnn.py", "tests/test_models.py"), deselect=ZOO_TESTS),
    "mpnn": Module(("baselines/mpnn.py",), ("tests/test_mpnn.py", "tests/test_models.py"),
                   deselect=(*ZOO_TESTS, "tests/test_mpnn.py::test_overfits_one_tiny_batch")),
    # the building blocks shared by the U-Nets and SineNet (test_unet_sinenet checks them against each other)
    "layers": Module(
        ("baselines/layers.py",),
        ("tests/test_unet.py", "tests/test_sinenet.py", "tests/test_unet_sinenet.py", "tests/test_models.py"),
        deselect=(*ZOO_TESTS, *OVERFIT_TESTS),
    ),
    "pderefiner": Module(
        ("baselines/pderefiner.py", "baselines/sampling.py"), ("tests/test_pderefiner.py", "tests/test_models.py"),
        deselect=(*ZOO_TESTS, *OVERFIT_TESTS,
                  "tests/test_pderefiner.py::test_trains_on_ks_and_evaluates_from_its_checkpoint"),
    ),
    "unet": Module(
        ("baselines/unet.py",), ("tests/test_unet.py", "tests/test_unet_sinenet.py", "tests/test_models.py"),
        deselect=(*ZOO_TESTS, *OVERFIT_TESTS),
    ),
    "sinenet": Module(
        ("baselines/sinenet.py",), ("tests/test_sinenet.py", "tests/test_unet_sinenet.py", "tests/test_models.py"),
        deselect=(*ZOO_TESTS, *OVERFIT_TESTS),
    ),
    # FNO and SFNO (sfno.py reuses fno.py's conditioning and mode helpers)
    "fno": Module(
        ("baselines/fno.py", "baselines/sfno.py"), ("tests/test_fno.py", "tests/test_models.py", "tests/test_two_d.py"),
        deselect=(*TRAINING_TESTS, *ZOO_TESTS, *OVERFIT_TESTS),
    ),
    # the registry, the package's re-exports and the persistence row
    # (not tests/test_architecture.py: its import-layer checks run lint-imports on the repository's pyproject.toml)
    "registry": Module(
        ("baselines/registry.py", "baselines/__init__.py", "baselines/persistence.py"),
        ("tests/test_models.py", "tests/test_conventions.py"), deselect=ZOO_TESTS,
    ),
    # the reference solver row (stepped through the KS generator's reference solver)
    "solver": Module(("baselines/solver.py",),
                     ("tests/test_solver_row.py", "tests/test_solver_settings.py", "tests/test_models.py"),
                     deselect=ZOO_TESTS),
    "t1": Module(("baselines/t1.py", "baselines/spectral_transforms.py"), ("tests/test_t1.py", "tests/test_models.py"),
                 deselect=(*ZOO_TESTS, "tests/test_t1.py::test_t1_overfits_a_tiny_batch")),
    # (not its tests that train both stages: minutes per mutant; the hand-computed sampling tests judge the same code)
    "dyffusion": Module(("baselines/dyffusion.py",), ("tests/test_dyffusion.py", "tests/test_models.py"),
                        deselect=(*ZOO_TESTS, *DYFFUSION_TRAINING_TESTS)),
}

# mutmut's outcome names (`mutmut results`) in the order they are reported.
OUTCOMES = ("killed", "survived", "timeout", "no tests", "suspicious", "segfault", "skipped", "not checked")


@dataclass
class Report:
    """The outcome of one module: mutant name -> mutmut status, and the survivors' locations and diffs."""

    name: str
    status_by_mutant: dict[str, str] = field(default_factory=dict)
    survivors: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (file:line, name, diff lines)
    error: str | None = None

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.status_by_mutant.values())

    def summary(self) -> str:
        """`total N  killed N  survived N  timed out N  [others]  kill rate P%` for one module."""
        counts, total = self.counts, len(self.status_by_mutant)
        parts = [f"total {total}", f"killed {counts['killed']}", f"survived {counts['survived']}"]
        parts.append(f"timed out {counts['timeout']}")
        parts += [f"{status} {counts[status]}" for status in OUTCOMES[3:] if counts[status]]
        parts += [f"{status} {n}" for status, n in sorted(counts.items()) if status not in OUTCOMES]
        rate = 100.0 * counts["killed"] / total if total else 0.0
        caught = 100.0 * (counts["killed"] + counts["timeout"]) / total if total else 0.0
        return "  ".join(parts) + f"  kill rate {rate:.1f}% (killed or timed out {caught:.1f}%)"


# --- configuration ------------------------------------------------------------------------------------------
def toml_value(value: Any) -> str:
    """A TOML literal for the plain values a config holds (strings, numbers, booleans, lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def toml_table(name: str, table: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in table.items())


def repo_config() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """This repository's `[tool.pytest.ini_options]`, `[tool.mutmut]` and `[project.scripts]` tables (the tests
    read the console scripts from `pyproject.toml`, tests/cli.py)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    tool = config.get("tool", {})
    if "mutmut" not in tool:
        raise SystemExit("pyproject.toml has no [tool.mutmut] table; it holds the settings shared by all modules")
    scripts = dict(config.get("project", {}).get("scripts", {}))
    return tool.get("pytest", {}).get("ini_options", {}), dict(tool["mutmut"]), scripts


def mutate_patterns(module: Module) -> tuple[list[str], list[str]]:
    """`only_mutate` globs of the module's existing Python sources, and the sources that do not exist yet."""
    patterns, missing = [], []
    for source in module.sources:
        path = REPO / source
        if path.is_file() and path.suffix == ".py":
            patterns.append(source)
        elif path.is_dir() and any(path.rglob("*.py")):
            patterns.append(source.rstrip("/") + "/*")  # fnmatch's `*` also matches `/`: the whole package
        else:
            missing.append(source)
    return patterns, missing


def prepare_workdir(name: str, module: Module, patterns: list[str], tests: list[str], resume: bool) -> Path:
    """`.mutmut/<name>/` with links to the code, tests and configs, and this module's mutmut settings."""
    pytest_ini, mutmut_cfg, scripts = repo_config()
    source_paths = [str(p) for p in mutmut_cfg.get("source_paths", [])]
    for pattern in patterns:
        if not any(pattern == p or pattern.startswith(p.rstrip("/") + "/") for p in source_paths):
            raise SystemExit(f"{pattern} is outside [tool.mutmut] source_paths {source_paths}")
    workdir = WORK_DIR / name
    if workdir.exists() and not resume:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    also_copy = [*mutmut_cfg.get("also_copy", []), *module.data]
    for entry in dict.fromkeys([*source_paths, *also_copy, "tests"]):
        link, target = workdir / entry, REPO / entry
        if target.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(target, link.parent), target_is_directory=target.is_dir())
    selection = [*tests, *(arg for test in module.deselect for arg in ("--deselect", test))]
    settings = {**mutmut_cfg, "only_mutate": patterns, "pytest_add_cli_args_test_selection": selection,
                "also_copy": also_copy}
    if module.keep_lines:
        settings["do_not_mutate_patterns"] = [*mutmut_cfg.get("do_not_mutate_patterns", []), *module.keep_lines]
    text = "# Generated by scripts/mutate.py for this module; edit [tool.mutmut] of the repository instead.\n"
    text += toml_table("project.scripts", scripts) + "\n"
    text += toml_table("tool.pytest.ini_options", pytest_ini) + "\n" + toml_table("tool.mutmut", settings)
    (workdir / "pyproject.toml").write_text(text, encoding="utf-8")
    return workdir


# --- running mutmut and reading its results -----------------------------------------------------------------
def mutmut_command() -> str:
    """The `mutmut` script of the interpreter running this driver (the project's virtualenv)."""
    candidate = Path(sys.executable).parent / "mutmut"
    found = str(candidate) if candidate.exists() else shutil.which("mutmut")
    if found is None:
        raise SystemExit("mutmut is not installed; run `make mutate` (or pip install -e '.[mutate]')")
    return found


def mutmut(workdir: Path, *args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [mutmut_command(), *args], cwd=workdir, env=env, text=True, capture_output=capture, check=False
    )


def read_statuses(workdir: Path) -> dict[str, str]:
    """Mutant name -> outcome, from `mutmut results --all true` (lines `    <name>: <outcome>`)."""
    out = mutmut(workdir, "results", "--all", "true")
    if out.returncode != 0:
        raise RuntimeError(f"mutmut results failed: {out.stderr.strip() or out.stdout.strip()}")
    statuses = {}
    for line in out.stdout.splitlines():
        match = re.match(r"^\s+(\S+): (.+)$", line)
        if match:
            statuses[match.group(1)] = match.group(2).strip()
    return statuses


def source_of(mutant: str) -> tuple[Path, str | None, str]:
    """(source file relative to the repo, class name or None, function name) of a mutant name.

    Names look like `pkg.mod.x_func__mutmut_3` (a function) or `pkg.mod.xǁClassǁmethod__mutmut_3` (a method).
    """
    module, _, generated = mutant.rpartition(".")
    generated = re.sub(r"__mutmut_\d+$", "", generated)
    if generated.startswith("xǁ"):
        _, class_name, func = generated.split("ǁ", 2)
    else:
        class_name, func = None, generated.removeprefix("x_")
    path = Path(*module.split("."))
    path = path.with_suffix(".py") if (REPO / path.with_suffix(".py")).is_file() else path / "__init__.py"
    return path, class_name, func


def function_lines(path: Path, class_name: str | None, func: str) -> tuple[int, int] | None:
    """First line (decorators included) and last line of a top-level function or method in `path`."""
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    body = tree.body
    if class_name is not None:
        classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == class_name]
        body = classes[0].body if classes else []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == func:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return start, node.end_lineno or node.lineno
    return None


def locate(mutant: str, diff: list[str]) -> str:
    """`file:line` of the first line a mutant changes, found by matching the diff against the source."""
    path, class_name, func = source_of(mutant)
    span = function_lines(path, class_name, func) if (REPO / path).is_file() else None
    if span is None:
        return f"{path}:?"
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    rel, changed = 0, None
    for line in diff:
        header = re.match(r"@@ -(\d+)", line)
        if header:
            rel = int(header.group(1)) - 1
        elif line.startswith("-") and not line.startswith("---"):
            changed = line[1:]
            break
        elif line.startswith(" "):
            rel += 1
    estimate = span[0] + rel
    if changed is not None:
        matches = [i + 1 for i in range(span[0] - 1, span[1]) if lines[i].strip() == changed.strip()]
        if matches:
            estimate = min(matches, key=lambda n: abs(n - estimate))
    return f"{path}:{estimate}"


def survivor_diff(workdir: Path, mutant: str) -> list[str]:
    """The unified diff of one mutant against the original function (`mutmut show`)."""
    out = mutmut(workdir, "show", mutant)
    return [line for line in out.stdout.splitlines() if not line.startswith("# ")]


def run_module(name: str, module: Module, max_children: int, resume: bool) -> Report | None:
    """Mutate one module against its tests; None (with a note) if its files or tests do not exist yet."""
    patterns, missing = mutate_patterns(module)
    tests = [t for t in module.tests if (REPO / t).is_file()]
    absent_tests = [t for t in module.tests if t not in tests]
    print(f"\n=== {name}: mutating {', '.join(patterns) or '-'} against {', '.join(tests) or '-'}", flush=True)
    if module.deselect:
        print(f"    left out of the mutation run: {', '.join(module.deselect)}", flush=True)
    if missing or not tests:
        print(f"    skipped: {', '.join(missing + absent_tests)} not present yet", flush=True)
        return None
    if absent_tests:
        print(f"    note: {', '.join(absent_tests)} not present yet; running without it", flush=True)
    workdir = prepare_workdir(name, module, patterns, tests, resume)
    report = Report(name)
    run = mutmut(workdir, "run", "--max-children", str(max_children), capture=False)
    if run.returncode != 0:
        report.error = f"mutmut run exited with {run.returncode} (see its output above)"
        return report
    report.status_by_mutant = read_statuses(workdir)
    for mutant, status in sorted(report.status_by_mutant.items()):
        if status == "survived":
            diff = survivor_diff(workdir, mutant)
            report.survivors.append((locate(mutant, diff), mutant, diff))
    report.survivors.sort(key=lambda s: (s[0].rpartition(":")[0], int(s[0].rpartition(":")[2] or 0)))
    return report


def print_report(report: Report) -> None:
    print(f"\n--- {report.name}: {report.error or report.summary()}")
    if report.survivors:
        print("surviving mutants (a missing test, or an equivalent change):")
    for where, mutant, diff in report.survivors:
        print(f"  {where}  {mutant}")
        for line in diff:
            if line.startswith(("-", "+")) and not line.startswith(("---", "+++")):
                print(f"      {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"modules to mutate (default: all of {list(MODULES)})")
    parser.add_argument("--list", action="store_true", help="print the module table and exit")
    parser.add_argument("--resume", action="store_true", help="continue the previous run instead of starting over")
    parser.add_argument(
        "--max-children", type=int, default=os.cpu_count() or 1, help="mutants tested in parallel (default: CPUs)"
    )
    args = parser.parse_args(argv)
    if args.list:
        for name, module in MODULES.items():
            print(f"{name}: {', '.join(module.sources)} <- {', '.join(module.tests)}")
            if module.deselect:
                print(f"    deselected: {', '.join(module.deselect)}")
        return 0
    unknown = [n for n in args.names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    reports = [run_module(n, MODULES[n], args.max_children, args.resume) for n in args.names or MODULES]
    done = [r for r in reports if r is not None]
    for report in done:
        print_report(report)
    print("\n=== summary")
    for report in done:
        print(f"{report.name:>14}: {report.error or report.summary()}")
    return 1 if any(r.error for r in done) else 0


if __name__ == "__main__":
    sys.exit(main())
