"""Shared plumbing of the Hydra mains: config location, schema registration, one-sentence errors.

`hydra_app` is the `@hydra.main` of every command. Before Hydra runs, it composes what the command line asks for
(`check_command_line`) and, on a bad override, prints one line (`error: model=fnoo is not a model; choose one of:
...`) and exits 1, so that Hydra's own multi-line dump never reaches the user and nothing (no run folder, no sweep
folder) is written. Then the real Hydra app runs unchanged. With `HYDRA_FULL_ERROR=1` the check is skipped and
Hydra reports as it always does, with the full stack trace; a check that fails for a reason of its own (not a
config error) also leaves the command line to Hydra, so the check can only ever make a refusal clearer.
"""

from __future__ import annotations

import copy
import functools
import importlib
import os
import re
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser  # the very parser `hydra.main` reads sys.argv with
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, RangeSweep
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationKeyError, MissingMandatoryValue, OmegaConfBaseException

from pdebench.cli.config_errors import describe_composition_error, describe_omegaconf_error
from pdebench.cli.hydra_setup import HYDRA_VERSION_BASE, register_configs
from pdebench.config import ConfigError
from pdebench.config.location import CONFIG_DIR
from pdebench.errors import UserError

# Errors whose message is already the one sentence a user needs (pdebench.errors); anything else is a bug and keeps
# its traceback.
USER_ERRORS = (UserError,)
# Hydra's in-process launcher and sweeper: with them every job of a sweep runs here, on this machine.
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"

Loader = Callable[[dict[str, Any]], Any]  # a command's resolved config -> its typed config (`train_config`, ...)
# Settings that become part of file names and result records. They take literal text or other settings of the
# config, never the environment: `label=${oc.env:HOME}` would put a home folder (or the whole PATH) into file names.
NAME_KEYS = ("label",)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")  # `${model.name}`: another setting of the same config


def _exit_with(error: BaseException) -> None:
    """A user error as one line on stderr, then exit 1."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)


def _raw_value(cfg: DictConfig, key: str) -> Any:
    """The value of `key` as written, before interpolation (None where there is no such key)."""
    node: Any = cfg
    for part in key.split("."):
        node = node._get_node(part, validate_access=False) if isinstance(node, DictConfig) else None
        if node is None:
            return None
    return node._value()


def _reads_environment(cfg: DictConfig, key: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether `key` interpolates `oc.env`, directly or through the settings it refers to."""
    raw = _raw_value(cfg, key)
    if not isinstance(raw, str) or "${" not in raw:
        return False
    if "oc.env" in raw:
        return True
    return any(_reads_environment(cfg, ref, seen | {key}) for ref in _REFERENCE.findall(raw) if ref not in seen)


def refuse_environment_in_names(cfg: DictConfig) -> None:
    """A ConfigError if a setting of `NAME_KEYS` reads the environment (`label=${oc.env:HOME}`)."""
    for key in NAME_KEYS:
        if _reads_environment(cfg, key):
            raise ConfigError(f"{key}={_raw_value(cfg, key)} reads the environment; a {key} becomes part of file "
                              f"names and result files, so write the name itself (letters, digits, '.', '_', '-')")


def report_user_errors(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Print a user error as one line on stderr and exit 1 instead of showing a stack trace."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            refuse_environment_in_names(cfg)
            return task(cfg)
        except USER_ERRORS as error:
            _exit_with(error)

    return wrapped


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for hyper-parameters, result files and manifests)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]


def _compose(config_name: str, overrides: list[Override], command: str) -> DictConfig:
    """The config `overrides` compose to (with its `hydra` node); a Hydra or OmegaConf refusal as a ConfigError."""
    try:
        return compose(config_name, overrides=[o.input_line for o in overrides], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise ConfigError(describe_composition_error(error, overrides, command)) from None


def _without_hydra(cfg: DictConfig) -> DictConfig:
    task = copy.deepcopy(cfg)
    with open_dict(task):
        task.pop("hydra", None)
    return task


def _validate(task: DictConfig, load: Loader) -> None:
    """The library's own loading (`load`, e.g. `train_config`) of the resolved config, as the task would run it.

    A config that does not resolve here for a reason the run itself would not have (an `${hydra:...}`
    interpolation, which needs the running job) is left to the task."""
    try:
        plain = OmegaConf.to_container(task, resolve=True, throw_on_missing=True)
    except (InterpolationKeyError, MissingMandatoryValue) as error:
        raise ConfigError(describe_omegaconf_error(error, None, "")) from None
    except OmegaConfBaseException:
        return
    load(plain)  # type: ignore[arg-type]


def _sweep_values(override: Override) -> list[Override]:
    """A discrete sweep (`seed=0,1`, `range(0,4)`, `choice(a,b)`, a glob of group options) as one override a value."""
    parser = OverridesParser.create(config_loader=override.config_loader)
    key = override.get_key_element()
    return [parser.parse_override(f"{key}={value}") for value in override.sweep_string_iterator()]


def _apply(cfg: DictConfig, override: Override, command: str) -> None:
    """Set one value override on `cfg` as Hydra would when composing a job (a wrong type or key fails)."""
    try:
        OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True,
                         force_add=override.is_add() or override.is_force_add())
    except OmegaConfBaseException as error:
        raise ConfigError(describe_omegaconf_error(error, override, command)) from None


def _check_overrides(config_name: str, load: Loader | None, arguments: list[str], multirun: bool,
                     runs_task: bool, command: str) -> None:
    """Compose every distinct job `arguments` ask for; refuse the first that Hydra or `load` would."""
    loader = GlobalHydra.instance().config_loader()
    try:
        overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    except HydraException as error:
        raise ConfigError(describe_composition_error(error, [], command)) from None
    for override in overrides:
        if not override.is_delete() and override.value() is None and loader.get_group_options(override.key_or_group):
            raise ConfigError(f"{override.input_line}: a config group takes the name of one of its configs ("
                              + ", ".join(loader.get_group_options(override.key_or_group))
                              + f"); to leave it out use ~{override.key_or_group}")
    sweeps = [o for o in overrides if o.is_sweep_override()]
    for sweep in sweeps:
        if not multirun:
            raise ConfigError(f"{sweep.input_line} is a sweep; add -m (--multirun) to run one job per value, or "
                              f"write a list as {sweep.key_or_group}=[a,b] or a string with commas in quotes")
        if sweep.is_hydra_override():
            raise ConfigError(f"{sweep.input_line}: Hydra's own settings cannot be swept; sweep a setting of "
                              f"{command} instead")
    discrete = {id(o): _sweep_values(o) for o in sweeps if o.is_discrete_sweep()}
    # each sweep at its first value; a sampled range (optuna's interval) cannot be composed and is left out
    first = [discrete[id(o)][0] if id(o) in discrete else o
             for o in overrides if not o.is_sweep_override() or id(o) in discrete]
    base = _compose(config_name, first, command)
    if multirun and OmegaConf.select(base, "hydra.sweeper._target_") == BASIC_SWEEPER:
        for sweep in sweeps:
            if not sweep.is_discrete_sweep():
                raise ConfigError(f"{sweep.input_line} is a range only a searching sweeper samples (e.g. "
                                  f"hydra/sweeper=optuna); the basic sweeper takes values: "
                                  f"{sweep.key_or_group}=a,b,c, range(start,stop) or choice(a,b)")
    # Settings are checked only where the task is about to run here (a run, or a sweep on the basic launcher): a
    # SLURM sweep submitted from a login node without a GPU may well ask for one, and --cfg/--info only print.
    local = not multirun or OmegaConf.select(base, "hydra.launcher._target_") == BASIC_LAUNCHER
    validates = load is not None and runs_task and local
    refuse_environment_in_names(base)
    composed = [base]
    for sweep in sweeps:
        values = discrete.get(id(sweep), [])
        if len(values) < 2:
            continue
        is_group = bool(loader.get_group_options(sweep.key_or_group))
        task = None if is_group else _without_hydra(base)  # each value replaces the one before it
        # the values a setting's own checks see: each one typed out, but only the far end of a range (its first
        # value is in `base`; the checks are bounds, so a range that passes at both ends passes throughout)
        checked = {id(values[-1])} if isinstance(sweep.value(), RangeSweep) else {id(v) for v in values}
        for value in values[1:]:
            if is_group:  # another config file: compose that job as Hydra's sweeper will
                job = [value if o is discrete[id(sweep)][0] else o for o in first]
                try:
                    composed.append(_compose(config_name, job, command))
                except ConfigError as error:  # name the job unless the sentence is about its choice itself
                    if value.input_line in str(error):
                        raise
                    raise ConfigError(f"in the job with {value.input_line}: {error}") from None
                continue
            # another value of one setting: its type against the composed config, then the settings' own checks
            _apply(typing.cast(DictConfig, task), value, command)
            if validates and id(value) in checked:
                _validate(typing.cast(DictConfig, task), typing.cast(Loader, load))
    if validates:
        for cfg in composed:
            _validate(_without_hydra(cfg), typing.cast(Loader, load))


def check_command_line(config_name: str, load: Loader | None, argv: Sequence[str]) -> None:
    """Refuse, with a ConfigError of one sentence, a command line whose overrides Hydra could not compose.

    Parses `argv` with Hydra's own argument parser, composes the config in the Hydra context `hydra.main` would
    use (for `-m`, the first value of every sweep, then each other config-group choice as its own job and each
    other value against the composed config), and, where the task will run on this machine, runs
    `load` (the command's own conversion to its typed config) on it (and on every other typed-out value of a
    swept setting, and the far end of a swept range). Help, version, shell completion, rerun and a user config
    directory are Hydra's alone. Costs one composition and one validation (about 0.1 s together,
    scripts/bench_config_check.py) per run and per swept config-group choice, and about 0.03 s per other checked
    value.
    """
    args = get_args_parser().parse_args(list(argv))
    if (args.help or args.hydra_help or args.shell_completion or args.experimental_rerun is not None
            or args.config_path is not None or args.config_dir is not None):
        return
    command = f"pdebench-{config_name}"
    runs_task = args.cfg is None and args.info is None
    if args.config_name not in (None, config_name):  # another primary config: compose it, its schema is not ours
        config_name, load = args.config_name, None
    with initialize_config_dir(CONFIG_DIR, version_base=HYDRA_VERSION_BASE):
        _check_overrides(config_name, load, list(args.overrides), args.multirun, runs_task, command)


def lazy_loader(module: str, name: str) -> Loader:
    """The loader `module.name` (e.g. `pdebench.training.config.train_config`), imported when a config is loaded:
    the loaders type the model and solver settings with the registries, which `--help` does not import."""

    def load(cfg: dict[str, Any]) -> Any:
        return getattr(importlib.import_module(module), name)(cfg)

    load.__qualname__ = load.__name__ = name
    return load


def _register_schemas(argv: Sequence[str], zoo_groups: Sequence[str]) -> None:
    """Fill Hydra's ConfigStore for this command line: the command schemas always; the model and generator schemas
    (which import the zoo and the solvers) when the command composes one of `zoo_groups` (`model`, `pde`) to run.
    `--help` only prints the composed config, for which untyped stand-ins of those schemas do."""
    try:
        args = get_args_parser().parse_args(list(argv))
        help_only = bool(args.help or args.hydra_help)
    except (Exception, SystemExit):  # noqa: BLE001 - a command line argparse refuses: Hydra reports it
        help_only = False
    zoo = () if help_only else tuple(zoo_groups)
    register_configs(models="model" in zoo, generators="pde" in zoo)


def hydra_app(config_name: str, load: Loader | None,
              zoo_groups: Sequence[str] = ()) -> Callable[[Callable[[Any], Any]], Callable[..., Any]]:
    """`@hydra.main` on `conf/<config_name>.yaml` for a task wrapped in `report_user_errors`, whose command line is
    checked first (`check_command_line`): a bad override is one line on stderr and exit code 1, before Hydra
    writes anything.

    `load` turns the resolved config into the command's typed config (`train_config`, ...), once: the task gets
    that object, and the command-line check runs the same function. `zoo_groups` are the config groups whose
    schemas come from the model or generator registries (`model`, `pde`)."""

    def decorate(task: Callable[[Any], Any]) -> Callable[..., Any]:
        def typed_task(cfg: DictConfig) -> Any:
            return task(cfg if load is None else load(to_container(cfg)))

        functools.update_wrapper(typed_task, task)
        app = hydra.main(config_path=CONFIG_DIR, config_name=config_name,
                         version_base=HYDRA_VERSION_BASE)(report_user_errors(typed_task))

        @functools.wraps(task)
        def main(cfg_passthrough: DictConfig | None = None) -> Any:
            _register_schemas(sys.argv[1:], zoo_groups)
            if cfg_passthrough is None and os.environ.get("HYDRA_FULL_ERROR") != "1":
                try:
                    check_command_line(config_name, load, sys.argv[1:])
                except USER_ERRORS as error:
                    _exit_with(error)
                except Exception:  # noqa: BLE001 - a check that cannot decide leaves the command line to Hydra
                    pass
            return app(cfg_passthrough)

        return main

    return decorate
