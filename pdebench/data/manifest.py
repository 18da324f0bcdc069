"""`manifest.json` of a dataset directory: what was generated, how, and the checksums of every split file.

The manifest pins a dataset twice over:

- per split, the file's size and the sha256 of its bytes: `verify_dataset` checks them before training or
  evaluation uses the files, `python -m pdebench.data check` and a rerun of `pdebench-generate` check them too;
- per split, `content_sha256`, a hash of the arrays in canonical order (`content_sha256`). Results and checkpoints
  record `manifest_hash(dataset_dir)`, the hash of these content hashes and the generation config, so a dataset's
  identity does not depend on how HDF5 laid the bytes out (batch size, chunk order, checksum filters).

Verifying means hashing every byte, so `verify_dataset` remembers what it verified in a small record next to the
manifest (`VERIFIED_NAME`: per split the size, mtime_ns, ctime_ns and the sha256 that matched) and re-hashes a file
only when its size or times changed; the size is compared with the manifest every time.

The split files' `pde` and `preset` attributes are copied into results, but neither hash covers them: so
`verify_dataset` and the checker also compare them with the manifest's config (`header_disagreement`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdebench.config import BenchmarkConfig, ConfigError, load_config
from pdebench.data.atomic import atomic_write_text
from pdebench.data.names import missing_or_kind, shown
from pdebench.data.reader import TrajectoryFile, declared_sources
from pdebench.data.schema import (
    MANIFEST_NAME,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SEED_VAR,
    SOURCES_ATTR,
    SPLITS,
    DatasetError,
)

_MANIFEST_KEYS = ("schema", "schema_version", "dataset", "package_version", "config", "splits")
_SPLIT_KEYS = ("file", "bytes", "sha256", "n_traj", "n_frames")
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
# What verify_dataset already hashed: per split {bytes, mtime_ns, ctime_ns, sha256}. A cache, never an authority.
VERIFIED_NAME = ".manifest-verified.json"
# First bytes hashed by content_sha256; a change of the canonical order below must change this tag.
_CONTENT_TAG = b"pdebench-content-v1\n"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (memory does not grow with the file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """Hex sha256 of what a split file holds, independent of how HDF5 laid it out on disk.

    Hashed in this canonical order, each array as little-endian C-order bytes after a line naming it, its dtype
    and shape: a header (grid kind, frame interval, names of coordinates, fields and parameters, and the names of
    the conditioning parameters when some parameter is not one of them), the spatial coordinates, the parameters,
    the seeds, then each field trajectory by trajectory (memory stays at one trajectory). Files written with another
    batch size, chunking or checksum filter hash the same.
    """
    digest = hashlib.sha256(_CONTENT_TAG)

    def put(name: str, values: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
        arr = np.ascontiguousarray(values)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        if shape is not None:
            digest.update(f"{name} {arr.dtype.str} {list(shape)}\n".encode())
        digest.update(arr.tobytes())

    with TrajectoryFile(path) as tf:
        header = {
            "grid": tf.grid_kind,
            "frame_interval": repr(float(tf.frame_interval)),
            "coordinates": list(tf.coordinate_names),
            "fields": list(tf.field_names),
            "parameters": list(tf.parameter_names),
        }
        if tf.conditioning_names != tf.parameter_names:
            # Only where a parameter is a record, not a model input (schema 1.4): a file whose parameters all
            # condition hashes as before 1.4, when every parameter did.
            header["conditioning"] = list(tf.conditioning_names)
        digest.update(json.dumps(header, sort_keys=True).encode() + b"\n")
        for name in tf.coordinate_names:
            values = tf.coordinate(name)
            put(name, values, values.shape)
        params = tf.parameters()
        for name in tf.parameter_names:
            put(name, params[name], params[name].shape)
        seeds = tf.seeds()
        put(SEED_VAR, seeds, seeds.shape)
        for name in tf.field_names:
            digest.update(f"{name} <f4 {[tf.n_traj, tf.n_frames, *tf.spatial_shape]}\n".encode())
            for i in range(tf.n_traj):
                put(name, tf.read_field(name, i))
    return digest.hexdigest()


def _package_version() -> str:
    from pdebench import __version__

    return str(__version__)


def generate_command(dataset_dir: Path, *options: str) -> str:
    """The `pdebench-generate` command (in backquotes) that writes the dataset directory `<pde>-<preset>`."""
    pde, _, preset = Path(dataset_dir).name.rpartition("-")
    words = ["pdebench-generate", *([f"pde={pde}", f"preset={preset}"] if pde else []), *options]
    return "`" + " ".join(words) + "`"


def _rewrite_hint(dataset_dir: Path) -> str:
    return f"rerun {generate_command(dataset_dir)} to rewrite it (finished split files are checked and kept)"


def _regenerate_hint(dataset_dir: Path) -> str:
    return (
        f"the file was changed or damaged after generation (or replaced by another one): regenerate the dataset "
        f"with {generate_command(dataset_dir, 'overwrite=true')}"
    )


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _load_verified(dataset_dir: Path) -> dict[str, Any]:
    """The verified-once record (split -> {bytes, mtime_ns, ctime_ns, sha256}); empty if absent or unreadable."""
    try:
        record = json.loads((Path(dataset_dir) / VERIFIED_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    splits = record.get("splits") if isinstance(record, dict) else None
    return {k: v for k, v in splits.items() if isinstance(v, dict)} if isinstance(splits, dict) else {}


def _save_verified(dataset_dir: Path, splits: dict[str, Any]) -> None:
    """Write the verified-once record; best effort (a read-only dataset directory just re-hashes next time)."""
    text = json.dumps({"splits": splits}, indent=2, sort_keys=True) + "\n"
    with contextlib.suppress(OSError):
        atomic_write_text(Path(dataset_dir) / VERIFIED_NAME, text)


def write_manifest(dataset_dir: Path, config: dict[str, Any]) -> Path:
    """Write `<dataset_dir>/manifest.json` describing the split files present; atomic and durable (atomic.py).

    Also records the files as verified (`VERIFIED_NAME`), so the first training run does not hash them again.
    """
    dataset_dir = Path(dataset_dir)
    splits: dict[str, dict[str, Any]] = {}
    verified: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        path = dataset_dir / f"{split}.h5"
        if not path.is_file():
            continue
        with TrajectoryFile(path) as tf:
            n_traj, n_frames = tf.n_traj, tf.n_frames
            parameters, conditioning = list(tf.parameter_names), list(tf.conditioning_names)
            sources = declared_sources(tf.attrs.get(SOURCES_ATTR))
        stat = _stat_key(path)  # taken before hashing: a change while hashing shows as a changed mtime later
        sha256 = file_sha256(path)
        splits[split] = {
            "file": path.name,
            "bytes": stat["bytes"],
            "sha256": sha256,
            "content_sha256": content_sha256(path),
            "n_traj": n_traj,
            "n_frames": n_frames,
            "parameters": parameters,
            "conditioning": conditioning,
        }
        if sources:  # an imported split file: pin the foreign files its fields map, as its own bytes are pinned
            splits[split]["sources"] = []
            for source in sources:
                source_stat = _stat_key(Path(source))
                source_sha256 = file_sha256(Path(source))
                splits[split]["sources"].append(
                    {"path": source, "bytes": source_stat["bytes"], "sha256": source_sha256})
                verified[source] = {**source_stat, "sha256": source_sha256}
        verified[split] = {**stat, "sha256": sha256}
    if not splits:
        raise DatasetError(f"no split file ({', '.join(s + '.h5' for s in SPLITS)}) in {dataset_dir}")
    manifest = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset_dir.name,
        "package_version": _package_version(),
        "config": config,
        "splits": splits,
    }
    try:
        text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise DatasetError(
            f"the config for {dataset_dir / MANIFEST_NAME} is not plain JSON data: {exc}"
        ) from exc
    path = atomic_write_text(dataset_dir / MANIFEST_NAME, text)
    _save_verified(dataset_dir, verified)
    return path


def _entry_problem(split: str, entry: Any) -> str | None:
    """What is wrong with one entry of `splits` (a phrase), or None."""
    if not isinstance(entry, dict) or not all(k in entry for k in _SPLIT_KEYS):
        return f"'splits.{split}' must be an object with keys {', '.join(_SPLIT_KEYS)}"
    if entry["file"] != f"{split}.h5":
        return f"'splits.{split}.file' is {entry['file']!r}; expected '{split}.h5'"
    for key in ("bytes", "n_traj", "n_frames"):
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"'splits.{split}.{key}' is {value!r}; expected a non-negative integer"
    for key in ("sha256", "content_sha256"):
        if key in entry and not (isinstance(entry[key], str) and _SHA256_RE.match(entry[key])):
            return f"'splits.{split}.{key}' is {entry[key]!r}; expected 64 lowercase hex digits"
    for key in ("parameters", "conditioning"):  # absent from manifests written before schema 1.4
        if key in entry and not (isinstance(entry[key], list) and all(isinstance(n, str) for n in entry[key])):
            return f"'splits.{split}.{key}' is {entry[key]!r}; expected a list of parameter names"
    if "sources" in entry and not (isinstance(entry["sources"], list) and all(map(_is_source, entry["sources"]))):
        return f"'splits.{split}.sources' is {shown(entry['sources'])}; expected a list of {{path, bytes, sha256}}"
    return None


def _is_source(source: Any) -> bool:
    """Whether one entry of an imported split's `sources` is {path: absolute path, bytes: int >= 0, sha256: hex}."""
    return (isinstance(source, dict) and isinstance(source.get("path"), str) and os.path.isabs(source["path"])
            and isinstance(source.get("bytes"), int) and not isinstance(source["bytes"], bool) and source["bytes"] >= 0
            and isinstance(source.get("sha256"), str) and _SHA256_RE.match(source["sha256"]) is not None)


def _source_mismatch(path: Path, manifest_path: Path, source: str, what: str, actual: object,
                     recorded: object) -> str:
    """One sentence: a foreign file that split file `path` maps differs from what the manifest pinned at import."""
    return (f"foreign file {source} of split file {path} has {what} {actual} but manifest {manifest_path} records "
            f"{recorded}; it changed since it was imported: import it again with `pdebench-import`")


def _source_problems(path: Path, manifest_path: Path, entry: dict[str, Any],
                     verified: dict[str, Any] | None) -> list[str]:
    """The sentences for every foreign file of an imported split (its manifest `entry`) that is gone or differs in
    size or sha256. With `verified` (the verified-once record, updated in place), a file whose size and times it
    holds is not hashed again; None hashes every file."""
    problems = []
    for source in entry.get("sources", ()):
        file = Path(source["path"])
        if not file.is_file():
            problems.append(f"{missing_or_kind(file, 'foreign file')}, but split file {path} maps it; import it again "
                            f"with `pdebench-import`")
            continue
        stat = _stat_key(file)
        if stat["bytes"] != source["bytes"]:
            problems.append(_source_mismatch(path, manifest_path, str(file), "bytes", stat["bytes"], source["bytes"]))
            continue
        if verified is not None and verified.get(source["path"]) == {**stat, "sha256": source["sha256"]}:
            continue
        actual = file_sha256(file)
        if actual != source["sha256"]:
            problems.append(_source_mismatch(path, manifest_path, str(file), "sha256", actual, source["sha256"]))
        elif verified is not None:
            verified[source["path"]] = {**stat, "sha256": actual}
    return problems


def _refuse_constant(name: str) -> None:
    """NaN, Infinity and -Infinity are no JSON: generation never writes them, and the identity cannot hash them."""
    raise ValueError(f"{name} is not a JSON value")


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """Load and sanity-check `<dataset_dir>/manifest.json`; DatasetError naming it if missing/invalid.

    Every error names the manifest and the generate command that rewrites it.
    """
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / MANIFEST_NAME
    if not path.is_file():  # a FIFO is named, never opened
        raise DatasetError(f"{missing_or_kind(path, 'manifest')}; {_rewrite_hint(dataset_dir)}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, ValueError) as exc:  # ValueError: also UnicodeDecodeError, JSONDecodeError, NaN and Infinity
        raise DatasetError(f"manifest {path} is not valid JSON ({exc}); {_rewrite_hint(dataset_dir)}") from exc
    problem = None
    if not isinstance(manifest, dict):
        problem = "must hold a JSON object"
    elif missing := [k for k in _MANIFEST_KEYS if k not in manifest]:
        problem = f"lacks key(s) {', '.join(missing)}"
    elif manifest["schema"] != SCHEMA_NAME:
        problem = f"has schema {manifest['schema']!r}; expected {SCHEMA_NAME!r}"
    elif not isinstance(manifest["config"], dict):
        problem = "has a 'config' that is not a JSON object"
    elif not isinstance(manifest["splits"], dict):
        problem = f"'splits' must map each split to {{{', '.join(_SPLIT_KEYS)}}}"
    elif unknown := [s for s in manifest["splits"] if s not in SPLITS]:
        problem = f"lists unknown split(s) {', '.join(map(repr, unknown))}; expected {', '.join(SPLITS)}"
    else:
        problem = next(filter(None, (_entry_problem(s, e) for s, e in manifest["splits"].items())), None)
    if problem is not None:
        raise DatasetError(f"manifest {path} {problem}; {_rewrite_hint(dataset_dir)}")
    return manifest


def _mismatch(path: Path, manifest_path: Path, what: str, actual: object, recorded: object) -> str:
    """One sentence: a split file differs from its manifest entry (`what` is 'bytes' or 'sha256')."""
    if what == "bytes":
        return f"split file {path} has {actual} bytes but manifest {manifest_path} records {recorded}"
    return f"split file {path} has {what} {actual} but manifest {manifest_path} records {recorded}"


def _raise_mismatch(path: Path, manifest_path: Path, what: str, actual: object, recorded: object) -> None:
    """Raise the mismatch; when the reader also refuses the file, its (more specific) sentence comes first."""
    sentence = _mismatch(path, manifest_path, what, actual, recorded)
    try:
        TrajectoryFile(path).close()
    except DatasetError as exc:
        raise DatasetError(f"{exc}; besides, {sentence}") from None
    raise DatasetError(f"{sentence}; {_regenerate_hint(path.parent)}")


def header_disagreement(path: Path, manifest_path: Path, manifest: dict[str, Any]) -> str | None:
    """The sentence when split file `path` names another `pde` or `preset` than the config of its manifest, else
    None (a key the config lacks is not compared). Opens the file's header (raising the reader's DatasetError for a
    file it refuses); reads no data."""
    with TrajectoryFile(path) as tf:
        found = {"pde": tf.pde, "preset": tf.preset}
    for key, value in found.items():
        expected = manifest["config"].get(key)
        if expected is not None and value != expected:
            return (
                f"{path}: root attribute '{key}' is {shown(value)}; expected {shown(expected)}, the {key} of manifest "
                f"{manifest_path}; {_regenerate_hint(path.parent)}"
            )
    return None


def verify_split(dataset_dir: Path, manifest: dict[str, Any], split: str, verified: dict[str, Any]) -> bool:
    """Check one existing split file against its manifest entry, raising DatasetError on a mismatch.

    The size is compared every time; the sha256 only when `verified` (the verified-once record, updated in place)
    holds no entry for this file's current size and times. Returns True when `verified` changed.
    """
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / f"{split}.h5"
    manifest_path = dataset_dir / MANIFEST_NAME
    entry = manifest["splits"].get(split)
    if entry is None:
        raise DatasetError(
            f"split file {path} is not listed in manifest {manifest_path}; {_rewrite_hint(dataset_dir)}"
        )
    stat = _stat_key(path)
    if stat["bytes"] != entry["bytes"]:
        _raise_mismatch(path, manifest_path, "bytes", stat["bytes"], entry["bytes"])
    before = dict(verified)
    if verified.get(split) != {**stat, "sha256": entry["sha256"]}:
        actual = file_sha256(path)
        if actual != entry["sha256"]:
            _raise_mismatch(path, manifest_path, "sha256", actual, entry["sha256"])
        verified[split] = {**stat, "sha256": actual}
    problems = _source_problems(path, manifest_path, entry, verified)
    if problems:
        raise DatasetError(problems[0])
    return verified != before


def verify_dataset(dataset_dir: Path, splits: Sequence[str] = SPLITS) -> Path:
    """Check the split files `splits` of a dataset directory against its manifest before they are used.

    Cheap on repeated use: sizes are compared every time, a file is hashed only when its size or times changed
    since it was last verified (see `VERIFIED_NAME`); its header is read every time and must name the manifest's
    pde and preset (`header_disagreement`). A split file that does not exist (or is no regular file) is left to the
    reader, which names the command that generates it. Raises DatasetError naming the file and both sizes or hashes,
    a pde or preset the manifest does not record, or a missing or invalid manifest and the command that rewrites it.
    Returns `dataset_dir`.
    """
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    verified = _load_verified(dataset_dir)
    changed = False
    for split in splits:
        path = dataset_dir / f"{split}.h5"
        if path.is_file():
            changed = verify_split(dataset_dir, manifest, split, verified) or changed
            problem = header_disagreement(path, dataset_dir / MANIFEST_NAME, manifest)
            if problem is not None:
                raise DatasetError(problem)
    if changed:
        _save_verified(dataset_dir, verified)
    return dataset_dir


def manifest_problems(dataset_dir: Path, splits: Sequence[str], whole: bool) -> list[str]:
    """Every disagreement between split files and the manifest, hashing everything (for the checker).

    `splits` are the split files to compare; `whole` also reports manifest entries whose file is missing and a
    split file the manifest does not list. Content hashes are recomputed for files whose bytes match.
    """
    dataset_dir = Path(dataset_dir)
    manifest_path = dataset_dir / MANIFEST_NAME
    try:
        manifest = read_manifest(dataset_dir)
    except DatasetError as exc:
        return [str(exc)]
    problems: list[str] = []
    names = list(SPLITS if whole else splits)
    for split in names:
        path = dataset_dir / f"{split}.h5"
        entry = manifest["splits"].get(split)
        if not path.is_file():
            if entry is not None and whole:
                problems.append(f"{missing_or_kind(path, 'split file')}, but manifest {manifest_path} lists it")
            continue
        if entry is None:
            problems.append(f"split file {path} is not listed in manifest {manifest_path}")
            continue
        size = path.stat().st_size
        if size != entry["bytes"]:
            problems.append(_mismatch(path, manifest_path, "bytes", size, entry["bytes"]))
            continue
        actual = file_sha256(path)
        if actual != entry["sha256"]:
            problems.append(_mismatch(path, manifest_path, "sha256", actual, entry["sha256"]))
            continue
        foreign = _source_problems(path, manifest_path, entry, None)
        if foreign:
            problems.extend(foreign)
            continue
        if "content_sha256" in entry:
            try:
                content = content_sha256(path)
            except DatasetError as exc:
                problems.append(str(exc))
                continue
            if content != entry["content_sha256"]:
                problems.append(_mismatch(path, manifest_path, "content_sha256", content, entry["content_sha256"]))
                continue
        try:
            problem = header_disagreement(path, manifest_path, manifest)
        except DatasetError as exc:
            problem = str(exc)
        if problem is not None:
            problems.append(problem)
    return problems


def manifest_hash(dataset_dir: Path) -> str:
    """The identity of a dataset, recorded by results and checkpoints as `manifest_sha256`.

    Hex sha256 of the generation config and the per-split content hashes of the manifest; it does not depend on
    file bytes, so regenerating with another batch size (or another HDF5 layout) keeps the identity. The byte
    checksums stay in the manifest to verify files (`verify_dataset`).
    """
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    content = {}
    for split, entry in sorted(manifest["splits"].items()):
        if "content_sha256" not in entry:
            raise DatasetError(
                f"manifest {dataset_dir / MANIFEST_NAME} records no content hash for split {split!r} (written by an "
                f"older pdebench); {_rewrite_hint(dataset_dir)}"
            )
        content[split] = entry["content_sha256"]
    record = {"config": manifest["config"], "content": content}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def benchmark_facts(dataset_dir: Path) -> dict[str, Any]:
    """The PDE's benchmark facts (model step, headline metric, conserved quantity) recorded in the manifest.

    They come from `benchmark:` of `conf/pde/<pde>.yaml` when the dataset was generated; see
    `pdebench.config.BenchmarkConfig`.
    """
    dataset_dir = Path(dataset_dir)
    facts = read_manifest(dataset_dir)["config"].get("benchmark")
    if not isinstance(facts, dict) or not isinstance(facts.get("frame_stride"), int):
        raise DatasetError(
            f"manifest {dataset_dir / MANIFEST_NAME} records no benchmark facts (config.benchmark.frame_stride); "
            f"rerun the generation command of {dataset_dir.name} to rewrite it (finished split files are kept)"
        )
    return facts


def benchmark_settings(facts: Mapping[str, Any], manifest_path: Path | str = MANIFEST_NAME) -> BenchmarkConfig:
    """Benchmark facts (`benchmark_facts`) as a `BenchmarkConfig` (a field the manifest predates takes its default);
    a manifest is a file on disk, so a fact the schema refuses is a DatasetError naming it."""
    try:
        return load_config(dict(facts), BenchmarkConfig)
    except ConfigError as error:
        raise DatasetError(f"{manifest_path}: benchmark facts refused: {error}") from None
