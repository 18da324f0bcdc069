"""`pdebench-board <board> [--scale cpu|paper] [--launcher NAME] [--seeds 0 1] [override ...]`: build a published
leaderboard end to end, resumably, as Hydra multiruns.

A board (`conf/board/<board>.yaml`) names a PDE, its learned entries (experiments of `conf/experiment/`), its
reference rows and, per scale, the dataset preset, the seeds, the training budget and where runs and results go.
In order, each step skipped where its output exists:

1. the dataset `<root>/<pde>-<preset>` is generated if its manifest is missing (`pdebench-generate`, which resumes
   a partly written one);
2. the reference rows (`pdebench-evaluate -m model=persistence,solver`) without a result are evaluated;
3. every entry and seed without a result trains (one `pdebench-train -m` over entries x seeds; each into
   `<runs_dir>/<label>/seed<seed>`, so a killed training resumes from its last checkpoint and a finished one stops
   at once);
4. each trained run without a result is evaluated on the test split (`pdebench-evaluate -m ckpt=...`, the
   stochastic entries with `rollout.ensemble` members), into `<out_dir>/results/`;
5. `pdebench-leaderboard` writes the tables and plots into `<out_dir>`, and `board.json` beside them records how
   (command, scale, budget, machine, commit, dataset manifest, each entry's label, parameters and times).

`--launcher slurm` (any `conf/hydra/launcher/` name) sends the training and evaluation jobs to that launcher, e.g.
a SLURM cluster. Overrides apply to every training job (`trainer=gpu`, `data.root=...`). Example: `pdebench-board ks`
(`make leaderboard-ks`), `pdebench-board ks --scale paper --launcher slurm` (`make leaderboard-ks SCALE=paper
LAUNCHER=slurm`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pdebench.cli.common import check_command_line, lazy_loader
from pdebench.cli.hydra_setup import composed, register_configs
from pdebench.cli.tune import Runner, run_command
from pdebench.config.location import CONFIG_DIR
from pdebench.errors import InvalidSetting, UnknownName, UserError

BOARD_GROUP = "board"  # conf/board/<board>.yaml; the CPU entries in conf/board/cpu/
SCALE_KEYS = {"preset", "entry_group", "seeds", "train", "evaluate", "out_dir", "runs_dir"}
BOARD_KEYS = {"pde", "entries", "baseline", "references", "stochastic", "ensemble", "scales", "published"}
RESULTS = "results"  # the board's result files: <out_dir>/results/<pde>-<preset>/<label>-seed<seed>.json
PROVENANCE = "board.json"  # how the board was built, and what it compares (pdebench.leaderboard.board_report)
REPORT = "board.md"  # board.json as a page


class StepFailed(UserError, RuntimeError):
    """A step's command stopped with an error (its own message is printed above this sentence)."""


@dataclass(frozen=True)
class Scale:
    """One scale of a board: what its runs train on, how long, and where they go."""

    name: str
    preset: str
    seeds: tuple[int, ...]
    entry_group: str | None  # `+<group>=<entry>` selects an entry (its width at this scale); None: `experiment=`
    train: tuple[str, ...]
    evaluate: tuple[str, ...]
    out_dir: Path
    runs_dir: Path


@dataclass(frozen=True)
class Board:
    """A board file, checked: the PDE, its entries and reference rows, and its scales."""

    name: str
    path: Path
    pde: str
    entries: tuple[str, ...]
    baseline: str  # the entry every other is compared with on the headline metric
    references: tuple[str, ...]
    stochastic: frozenset[str]
    ensemble: int
    scales: dict[str, Scale] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)  # what the board is set against, with its source


def boards() -> list[str]:
    """The boards there are (`conf/board/<name>.yaml`)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / BOARD_GROUP).glob("*.yaml"))


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidSetting(f"{path}: {key} must be a list of names, got {value!r}")
    return tuple(value)


def _scale(path: Path, name: str, raw: Any) -> Scale:
    where = f"scales.{name}"
    if not isinstance(raw, dict):
        raise InvalidSetting(f"{path}: {where} must be a mapping, got {raw!r}")
    unknown, missing = set(raw) - SCALE_KEYS, SCALE_KEYS - {"evaluate"} - set(raw)
    if unknown or missing:
        raise InvalidSetting(f"{path}: {where} has unknown keys {sorted(unknown)} and lacks {sorted(missing)}; "
                             f"expected {sorted(SCALE_KEYS)}")
    seeds = raw["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)
            and len(set(seeds)) == len(seeds)):
        raise InvalidSetting(f"{path}: {where}.seeds must be a non-empty list of distinct seeds >= 0, got {seeds!r}")
    group = raw["entry_group"]
    if group is not None and not (isinstance(group, str) and (Path(CONFIG_DIR) / group).is_dir()):
        raise InvalidSetting(f"{path}: {where}.entry_group={group!r} is not a config group of {CONFIG_DIR}")
    return Scale(name, str(raw["preset"]), tuple(seeds), group, _strings(path, f"{where}.train", raw["train"]),
                 _strings(path, f"{where}.evaluate", raw.get("evaluate") or []),
                 Path(str(raw["out_dir"])), Path(str(raw["runs_dir"])))


def load_board(name: str) -> Board:
    """The board `conf/board/<name>.yaml`, every key checked (a bad one is named with its file)."""
    path = Path(CONFIG_DIR) / BOARD_GROUP / f"{name}.yaml"
    if name not in boards():
        raise UnknownName(f"board {name!r} does not exist; boards: {', '.join(boards()) or 'none'}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidSetting(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or set(raw) != BOARD_KEYS:
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise InvalidSetting(f"{path}: expected exactly the keys {sorted(BOARD_KEYS)}, found {found}")
    entries = _strings(path, "entries", raw["entries"])
    stochastic = _strings(path, "stochastic", raw["stochastic"] or [])
    if stray := sorted(set(stochastic) - set(entries)):
        raise InvalidSetting(f"{path}: stochastic names {stray}, which are not entries")
    if raw["baseline"] not in entries:
        raise InvalidSetting(f"{path}: baseline {raw['baseline']!r} is not an entry")
    ensemble = raw["ensemble"]
    if not (isinstance(ensemble, int) and ensemble >= 2):
        raise InvalidSetting(f"{path}: ensemble must be a number of members >= 2, got {ensemble!r}")
    if not isinstance(raw["scales"], dict) or not raw["scales"]:
        raise InvalidSetting(f"{path}: scales must map scale names to their settings")
    scales = {str(k): _scale(path, str(k), v) for k, v in raw["scales"].items()}
    references = _strings(path, "references", raw["references"])
    if not isinstance(raw["published"], dict) or "source" not in raw["published"]:
        raise InvalidSetting(f"{path}: published must be a mapping of the published facts the board is set against, "
                             "with their source")
    return Board(name, path, str(raw["pde"]), entries, str(raw["baseline"]), references, frozenset(stochastic),
                 ensemble, scales, raw["published"])


@dataclass(frozen=True)
class Job:
    """One entry at one seed: its label, where it trains and the checkpoint folder and result file it leaves."""

    entry: str
    seed: int
    label: str
    run_dir: Path
    checkpoint: Path  # the run folder whose checkpoints/best.ckpt is evaluated (a staged run: its last stage's)
    result: Path
    stochastic: bool


@dataclass(frozen=True)
class Plan:
    """What a board at one scale is made of on this machine: its jobs, the dataset and the commands' settings."""

    board: Board
    scale: Scale
    root: Path
    jobs: tuple[Job, ...]
    launcher: str | None
    overrides: tuple[str, ...]

    @property
    def dataset(self) -> str:
        return f"{self.board.pde}-{self.scale.preset}"

    @property
    def results_dir(self) -> Path:
        return self.scale.out_dir / RESULTS

    def entry_override(self, entries: Sequence[str]) -> str:
        """The override that sweeps `entries`: `+<entry_group>=a,b` or `experiment=a,b`."""
        group = self.scale.entry_group
        return f"+{group}={','.join(entries)}" if group else f"experiment={','.join(entries)}"


def plan_board(board: Board, scale_name: str, root: str | Path, seeds: Sequence[int] | None = None,
               launcher: str | None = None, overrides: Sequence[str] = (), entries: Sequence[str] | None = None,
               preset: str | None = None) -> Plan:
    """Every job of `board` at scale `scale_name` (only `entries`, on `preset`, where given: then into
    `<out_dir>-<preset>` and `<runs_dir>-<preset>`), each entry composed once (its label resolved) before anything
    runs, so a misspelt entry or override stops the board before the first step."""
    if scale_name not in board.scales:
        raise UnknownName(f"{board.path}: no scale {scale_name!r}; scales: {', '.join(board.scales)}")
    scale = board.scales[scale_name]
    if preset is not None and preset != scale.preset:  # a check on another preset never mixes with the board
        scale = replace(scale, preset=preset, out_dir=scale.out_dir.with_name(f"{scale.out_dir.name}-{preset}"),
                        runs_dir=scale.runs_dir.with_name(f"{scale.runs_dir.name}-{preset}"))
    if entries:
        if unknown := [e for e in entries if e not in board.entries]:
            raise UnknownName(f"{board.path} has no entry {', '.join(unknown)}; entries: {', '.join(board.entries)}")
        kept = tuple(e for e in board.entries if e in entries)
        board = replace(board, entries=kept, baseline=board.baseline if board.baseline in kept else kept[0])
    seeds = tuple(scale.seeds if seeds is None else seeds)
    if not seeds or any(s < 0 for s in seeds):
        raise InvalidSetting(f"--seeds {list(seeds)} is not valid: expected seeds >= 0")
    plan = Plan(board, scale, Path(root), (), launcher, tuple(overrides))
    # every entry as the training multirun will compose and check it: a bad override is one sentence, here
    register_configs()
    check_command_line("train", lazy_loader("pdebench.training.config", "train_config"),
                       ["-m", plan.entry_override(board.entries), f"data.preset={scale.preset}", *_launcher(plan),
                        *scale.train, *overrides])
    jobs = []
    for entry in board.entries:
        cfg = composed("train", [plan.entry_override([entry]), f"data.preset={scale.preset}", *scale.train,
                                 *overrides])
        if cfg["data"]["pde"] != board.pde:
            raise InvalidSetting(f"{board.path}: entry {entry} trains on {cfg['data']['pde']}, not {board.pde}")
        stages = cfg.get("stages") or []
        for seed in seeds:
            run_dir = scale.runs_dir / cfg["label"] / f"seed{seed}"
            jobs.append(Job(entry, seed, cfg["label"], run_dir, run_dir / stages[-1]["name"] if stages else run_dir,
                            plan.results_dir / plan.dataset / f"{cfg['label']}-seed{seed}.json",
                            entry in board.stochastic))
    return Plan(board, scale, Path(root), tuple(jobs), launcher, tuple(overrides))


def _module(name: str) -> list[str]:
    return [sys.executable, "-m", f"pdebench.cli.{name}"]


def _launcher(plan: Plan) -> list[str]:
    return [f"hydra/launcher={plan.launcher}"] if plan.launcher else []


def generate_command(plan: Plan) -> list[str] | None:
    """`pdebench-generate` of the board's dataset, or None where its manifest is there already."""
    from pdebench.data.schema import MANIFEST_NAME

    if (plan.root / plan.dataset / MANIFEST_NAME).is_file():
        return None
    return [*_module("generate"), f"pde={plan.board.pde}", f"preset={plan.scale.preset}", f"root={plan.root}"]


def reference_command(plan: Plan, stamp: str) -> list[str] | None:
    """One `pdebench-evaluate -m` over the reference rows that have no result yet (None: all have one)."""
    results = plan.results_dir / plan.dataset
    missing = [name for name in plan.board.references if not any(results.glob(f"{name}-*.json"))]
    if not missing:
        return None
    return [*_module("evaluate"), "-m", f"model={','.join(missing)}", f"data={plan.board.pde}",
            f"data.preset={plan.scale.preset}", f"data.root={plan.root}", f"results_dir={plan.results_dir}",
            f"hydra.sweep.dir={plan.scale.runs_dir}/multirun/{stamp}-references", *_launcher(plan),
            *plan.scale.evaluate]


def train_command(plan: Plan, stamp: str) -> list[str] | None:
    """One `pdebench-train -m` over the entries with a seed that has no result, each at every seed of the plan
    (a seed whose run has finished resumes at its budget and stops at once); None when every job has a result."""
    pending = [e for e in plan.board.entries if any(j.entry == e and not j.result.is_file() for j in plan.jobs)]
    if not pending:
        return None
    seeds = sorted({j.seed for j in plan.jobs})
    return [*_module("train"), "-m", plan.entry_override(pending), f"seed={','.join(map(str, seeds))}",
            f"data.preset={plan.scale.preset}", f"data.root={plan.root}",
            f"run_dir={plan.scale.runs_dir}/${{label}}/seed${{seed}}",
            f"hydra.sweep.dir={plan.scale.runs_dir}/multirun/{stamp}-train", *_launcher(plan), *plan.scale.train,
            *plan.overrides]


def evaluate_commands(plan: Plan, stamp: str) -> list[list[str]]:
    """`pdebench-evaluate -m ckpt=...` over the trained jobs without a result: one for the deterministic entries,
    one (with `rollout.ensemble`) for the stochastic ones."""
    commands = []
    for stochastic in (False, True):
        todo = [j for j in plan.jobs if j.stochastic == stochastic and not j.result.is_file()]
        if not todo:
            continue
        commands.append([*_module("evaluate"), "-m", f"ckpt={','.join(str(j.checkpoint) for j in todo)}",
                         f"data.root={plan.root}", f"results_dir={plan.results_dir}",
                         f"hydra.sweep.dir={plan.scale.runs_dir}/multirun/{stamp}-evaluate{int(stochastic)}",
                         *([f"rollout.ensemble={plan.board.ensemble}"] if stochastic else []), *_launcher(plan),
                         *plan.scale.evaluate])
    return commands


def leaderboard_command(plan: Plan) -> list[str]:
    return [*_module("leaderboard"), f"results={plan.results_dir}", f"out_dir={plan.scale.out_dir}", "print=false"]


def _cpu_model() -> str:
    """The processor's name as the OS reports it (`model name` of /proc/cpuinfo on Linux), else platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(plan: Plan, command: Sequence[str], step_seconds: dict[str, float | None]) -> dict[str, Any]:
    """`board.json`: how this board was built, read from its result files (every number in it comes from one,
    or from the board file and this machine)."""
    from pdebench.leaderboard.board_report import board_report
    from pdebench.provenance import git_commit
    from pdebench.rollout.results import read_result

    entries = []
    by_label: dict[str, list[dict[str, Any]]] = {}
    for job in plan.jobs:
        result = read_result(job.result)
        by_label.setdefault(job.label, []).append(result)
        entries.append({"entry": job.entry, "label": job.label, "seed": job.seed,
                        "result": str(job.result.relative_to(plan.scale.out_dir)),
                        "n_parameters": result.get("n_parameters"), "train_time_s": result.get("train_time_s"),
                        "deviations": (result.get("run") or {}).get("deviations"),
                        "ensemble": (result.get("scoring") or {}).get("ensemble"),
                        "git_commit": result.get("git_commit"),  # of the evaluation; the training's is train_commit
                        "train_commit": (result.get("run") or {}).get("git_commit"),
                        "manifest_sha256": result.get("manifest_sha256")})
    manifests = sorted({e["manifest_sha256"] for e in entries if e["manifest_sha256"]})
    baseline = next(j.label for j in plan.jobs if j.entry == plan.board.baseline)
    return {"board": plan.board.name, "scale": plan.scale.name, "pde": plan.board.pde, "dataset": plan.dataset,
            "command": shlex.join(command), "seeds": sorted({j.seed for j in plan.jobs}),
            "train_overrides": list(plan.scale.train) + list(plan.overrides), "launcher": plan.launcher or "basic",
            "machine": {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "system": platform.system(),
                        "python": platform.python_version()},
            "git_commit": git_commit(), "manifest_sha256": manifests,
            "date": datetime.date.today().isoformat(), "step_wall_s": step_seconds, "entries": entries,
            "comparisons": board_report(by_label, baseline),
            "scales": {s.name: {"preset": s.preset, "seeds": list(s.seeds), "entry_group": s.entry_group,
                                "train": list(s.train), "evaluate": list(s.evaluate)}
                       for s in plan.board.scales.values()},
            "published": plan.board.published}


def _previous_step_seconds(path: Path, plan: Plan) -> dict[str, float | None]:
    """The step wall times an earlier run of the same board, scale and dataset recorded in `path` (none if none)."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    same = isinstance(old, dict) and (old.get("board"), old.get("scale"), old.get("dataset")) == (
        plan.board.name, plan.scale.name, plan.dataset)
    steps = old.get("step_wall_s") if same else None
    return {k: v for k, v in steps.items() if isinstance(v, (int, float))} if isinstance(steps, dict) else {}


def run_board(plan: Plan, command: Sequence[str] = (), runner: Runner = run_command,
              say: Callable[[str], None] = print) -> Path:
    """Run every step of `plan` that has work left (module docstring), then write `<out_dir>/board.json`; returns
    that path. A step that fails stops the board with one sentence; what earlier steps wrote stays."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    done = sum(j.result.is_file() for j in plan.jobs)
    say(f"board {plan.board.name} ({plan.scale.name}): {len(plan.board.entries)} entries x "
        f"{len({j.seed for j in plan.jobs})} seed(s) on {plan.dataset}, {done} of {len(plan.jobs)} evaluated already")
    steps: list[tuple[str, list[str] | None]] = [
        ("generate the dataset", generate_command(plan)),
        ("evaluate the reference rows", reference_command(plan, stamp)),
        ("train", train_command(plan, stamp)),
    ]
    seconds: dict[str, float | None] = {}
    for name, cmd in steps:
        seconds[name] = _run_step(name, cmd, runner, say)
    missing = [j for j in plan.jobs if not j.result.is_file() and not (j.checkpoint / "checkpoints" / "best.ckpt")
               .is_file()]
    if missing:
        raise StepFailed(f"training left no checkpoint for {', '.join(f'{j.label} seed {j.seed}' for j in missing)} "
                         f"(expected <run>/checkpoints/best.ckpt under {plan.scale.runs_dir})")
    evaluated = [_run_step("evaluate", cmd, runner, say) for cmd in evaluate_commands(plan, stamp)]
    seconds["evaluate"] = sum(t for t in evaluated if t is not None) if evaluated else None
    seconds["leaderboard"] = _run_step("write the leaderboard", leaderboard_command(plan), runner, say)
    unevaluated = [j for j in plan.jobs if not j.result.is_file()]
    if unevaluated:
        raise StepFailed(f"no result file for {', '.join(str(j.result) for j in unevaluated)} after the evaluation")
    from pdebench.data.atomic import atomic_write_text
    from pdebench.leaderboard.board_report import render_board_md

    path = plan.scale.out_dir / PROVENANCE
    previous = _previous_step_seconds(path, plan)  # a step with nothing to do now keeps the time it took then
    seconds = {name: previous.get(name) if t is None else t for name, t in seconds.items()}
    record = provenance(plan, command, seconds)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    atomic_write_text(plan.scale.out_dir / REPORT, render_board_md(record))
    say(f"board written: {plan.scale.out_dir} (how it was built: {path}, {plan.scale.out_dir / REPORT})")
    return path


def _run_step(name: str, command: list[str] | None, runner: Runner, say: Callable[[str], None]) -> float | None:
    """Run one step's command (or say it has nothing to do: None); its wall seconds."""
    if command is None:
        say(f"- {name}: nothing to do")
        return None
    say(f"- {name}: {shlex.join(command)}")
    start = time.perf_counter()
    status = runner(command)
    if status != 0:
        raise StepFailed(f"step '{name}' stopped with exit code {status}; its error is above, and what the steps "
                         "before it wrote is kept (rerun the same command to resume)")
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pdebench-board", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("board", help="the board to build (conf/board/<board>.yaml)")
    parser.add_argument("overrides", nargs="*", help="pdebench-train overrides for every training job")
    parser.add_argument("--scale", default="cpu", help="the board's scale (default cpu)")
    parser.add_argument("--root", default="data", help="where the datasets are (default data)")
    parser.add_argument("--launcher", help="a Hydra launcher of conf/hydra/launcher/ for the training and "
                                           "evaluation jobs (default: this machine, one job at a time)")
    parser.add_argument("--seeds", type=int, nargs="+", help="the seeds (default: the scale's)")
    parser.add_argument("--entry", action="append", help="only this entry (repeatable; default: every entry)")
    parser.add_argument("--preset", help="another preset of the PDE than the scale's (e.g. tiny, for a check)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the commands, run nothing")
    args = parser.parse_intermixed_args(argv)
    try:
        if args.launcher and not (Path(CONFIG_DIR) / "hydra" / "launcher" / f"{args.launcher}.yaml").is_file():
            raise UnknownName(f"--launcher {args.launcher} is not a launcher of conf/hydra/launcher/")
        plan = plan_board(load_board(args.board), args.scale, args.root, args.seeds, args.launcher, args.overrides,
                          args.entry, args.preset)
        command = ["pdebench-board", *(argv if argv is not None else sys.argv[1:])]
        if args.dry_run:
            for job in plan.jobs:
                state = "evaluated" if job.result.is_file() else "to do"
                print(f"{job.label} seed {job.seed} ({job.entry}): {job.run_dir} -> {job.result} [{state}]")
            for cmd in (generate_command(plan), reference_command(plan, "STAMP"), train_command(plan, "STAMP"),
                        *evaluate_commands(plan, "STAMP"), leaderboard_command(plan)):
                if cmd is not None:
                    print(shlex.join(cmd))
            return
        run_board(plan, command)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
