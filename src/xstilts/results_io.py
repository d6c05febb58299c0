"""Everything that writes or reads `results/`: atomic writes, cell scores, checkpoint manifests.

Every write goes to a hidden temporary sibling (".<name>.<random>.tmp") and is renamed onto its
destination only when complete, so no reader ever sees a half-written file. Readers skip names starting
with "." (pyarrow's dataset discovery does so by default), so a crashed writer's leftovers are ignored.

Scores live in a hive tree, `results/scores/intermediate=I/target=T/seed=S/scores.parquet`; the three
keys are in the folder names only (see DESIGN.md section 4), so `pandas.read_parquet("results/scores")`
reads the whole grid with them as partition columns.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xstilts.conditions import CLEAN
from xstilts.layout import ALIGNMENT_FILE, MANIFEST_FILE, PREDICTIONS_FILE, SCORES_FILE

HIDDEN_PREFIXES = (".", "_")

SCORE_SCHEMA = pa.schema(
    [
        ("language", pa.string()),
        ("split", pa.string()),
        ("condition", pa.string()),  # the evaluation condition (`xstilts.conditions`): "clean" unless perturbed
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("n_examples", pa.int64()),
        ("model", pa.string()),
        ("steps", pa.int64()),
        ("wall_seconds", pa.float64()),
        ("device", pa.string()),
        ("run_facts", pa.string()),  # JSON (`provenance.run_facts`): seed, threads, versions, ...
    ]
)
SCORE_COLUMNS: tuple[str, ...] = tuple(SCORE_SCHEMA.names)
SCORE_ROW_KEYS = frozenset({"language", "split", "metric", "value", "n_examples"})  # and "condition", optional
PARTITION_SCHEMA = pa.schema([("intermediate", pa.string()), ("target", pa.string()), ("seed", pa.int64())])
PARTITION_COLUMNS: tuple[str, ...] = tuple(PARTITION_SCHEMA.names)

PREDICTIONS_SCHEMA = pa.schema(
    [
        ("language", pa.string()),
        ("split", pa.string()),
        ("condition", pa.string()),
        ("id", pa.string()),  # the example's id, else its row in the prepared table
        ("prediction", pa.string()),  # a label name, an answer text; JSON for lists (tags, gold answers)
        ("gold", pa.string()),
        ("score", pa.float64()),  # the example's score on the target's headline scale; null: corpus-level metric
    ]
)

MANIFEST_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("phase", pa.string()),
        ("task", pa.string()),
        ("step", pa.int64()),
        ("dev_metric", pa.float64()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("run_facts", pa.string()),
    ]
)
MANIFEST_COLUMNS: tuple[str, ...] = tuple(MANIFEST_SCHEMA.names)


# --------------------------------------------------------------------------------------------------
# Atomic writes


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{tag}.tmp")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling of `path`; on success rename it onto `path`.

    The caller writes a file or a directory at the yielded path. On normal exit it replaces `path`
    (an existing directory is renamed aside, the new one renamed in, the old one deleted); on any
    exception the temporary is deleted and the exception re-raised. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic write of {path}: nothing was written to {tmp}")
        if tmp.is_dir() and path.is_dir():
            old = _sibling(path, ".old")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            if tmp.is_file():
                _fsync_file(tmp)
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _write_table(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as parquet atomically (a named or non-range index is kept as columns)."""
    _write_table(pa.Table.from_pandas(df), path)


def write_text(text: str, path: Path) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Scores


def _score_row_error(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "not a dict"
    if set(row) - {"condition"} != SCORE_ROW_KEYS:
        missing, extra = SCORE_ROW_KEYS - set(row), set(row) - SCORE_ROW_KEYS - {"condition"}
        return f"missing keys {sorted(missing)}, unexpected keys {sorted(extra)}" + (
            " (intermediate/target/seed live in the folder names only)" if extra & set(PARTITION_COLUMNS) else ""
        )
    for key in ("language", "split", "metric", *(("condition",) if "condition" in row else ())):
        if not isinstance(row[key], str) or not row[key]:
            return f"{key} must be a non-empty string"
    value = row["value"]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return f"value must be a finite number, got {value!r}"
    n = row["n_examples"]
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        return f"n_examples must be a non-negative int, got {n!r}"
    return None


def write_scores(rows: list[dict], path: Path, *, model: str, steps: int, wall_seconds: float, device: str,
                 run_facts: Mapping[str, Any]) -> None:
    """Validate one cell's score rows and write them atomically as `scores.parquet`.

    Each row holds exactly language, split, metric, value (finite, 0-100 scale; NaN is refused),
    n_examples and optionally condition ("clean" when absent); the run facts (model, steps, wall seconds,
    device and the JSON `run_facts`) are the same for every row. (language, split, condition, metric) is
    unique.
    """
    if not rows:
        raise ValueError(f"{path}: no score rows")
    seen: set[tuple[str, str, str]] = set()
    for i, row in enumerate(rows):
        if error := _score_row_error(row):
            raise ValueError(f"{path}: score row {i} ({row!r}): {error}")
        key = (row["language"], row["split"], row.get("condition", CLEAN), row["metric"])
        if key in seen:
            raise ValueError(f"{path}: duplicate score row for language/split/condition/metric {key}")
        seen.add(key)
    df = pd.DataFrame(
        {
            "language": [r["language"] for r in rows],
            "split": [r["split"] for r in rows],
            "condition": [r.get("condition", CLEAN) for r in rows],
            "metric": [r["metric"] for r in rows],
            "value": [float(r["value"]) for r in rows],
            "n_examples": [int(r["n_examples"]) for r in rows],
            "model": str(model),
            "steps": int(steps),
            "wall_seconds": float(wall_seconds),
            "device": str(device),
            "run_facts": json.dumps(dict(run_facts), sort_keys=True),
        }
    )
    _write_table(pa.Table.from_pandas(df, schema=SCORE_SCHEMA, preserve_index=False), path)


def write_predictions(rows: list[dict], path: Path) -> None:
    """One cell's per-example predictions (`PREDICTIONS_SCHEMA` keys), written atomically."""
    table = pa.Table.from_pylist([{c: row.get(c) for c in PREDICTIONS_SCHEMA.names} for row in rows],
                                 schema=PREDICTIONS_SCHEMA)
    _write_table(table, path)


@dataclass(frozen=True)
class ScoresRead:
    """Every readable scores file of a tree, as one frame, and the files that are not (path -> why)."""

    frame: pd.DataFrame
    corrupt: dict[Path, str]


_CELL_FOLDER = re.compile(r"^intermediate=(?P<intermediate>[^/]+)/target=(?P<target>[^/]+)/seed=(?P<seed>\d+)$")


def _cell_table(path: Path, root: Path) -> pa.Table:
    """One scores file with its cell's partition columns, in the unified schema; ValueError says why not."""
    cell = _CELL_FOLDER.match(path.parent.relative_to(root).as_posix())
    if cell is None:
        raise ValueError("not in an intermediate=I/target=T/seed=S folder")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"unreadable: {str(err).splitlines()[0]}") from None
    missing = [c for c in SCORE_COLUMNS if c != "condition" and c not in table.column_names]
    if missing:
        raise ValueError(f"not a scores file: no column {', '.join(missing)}")
    if "condition" not in table.column_names:  # written before evaluation conditions
        table = table.append_column("condition", pa.array([CLEAN] * len(table), pa.string()))
    try:
        table = table.select(list(SCORE_COLUMNS)).cast(SCORE_SCHEMA)
    except (pa.ArrowException, ValueError) as err:
        raise ValueError(f"not a scores file: {str(err).splitlines()[0]}") from None
    keys = [pa.array([cell[k]] * len(table), PARTITION_SCHEMA.field(k).type) for k in PARTITION_COLUMNS[:2]]
    seed = pa.array([int(cell["seed"])] * len(table), pa.int64())
    schema = pa.unify_schemas([PARTITION_SCHEMA, SCORE_SCHEMA])
    return pa.Table.from_arrays([*keys, seed, *table.columns], schema=schema)


def scan_scores(scores_dir: Path) -> ScoresRead:
    """Read the whole hive tree below `scores_dir` (hidden and temporary names skipped), each file checked:
    a truncated or foreign file is left out and named in `corrupt`, never an exception.

    Columns: intermediate (str), target (str), seed (int64), then SCORE_COLUMNS; sorted by cell,
    language, split, condition, metric. An empty frame with these columns when there is no scores file.
    """
    root = Path(scores_dir)
    schema = pa.unify_schemas([PARTITION_SCHEMA, SCORE_SCHEMA])
    files = sorted(p for p in root.rglob(SCORES_FILE)
                   if not any(part.startswith(HIDDEN_PREFIXES) for part in p.relative_to(root).parts))
    tables, corrupt = [], {}
    for path in files:
        try:
            tables.append(_cell_table(path, root))
        except ValueError as err:
            corrupt[path] = str(err)
    df = (pa.concat_tables(tables) if tables else schema.empty_table()).to_pandas()
    keys = [*PARTITION_COLUMNS, "language", "split", "condition", "metric"]
    return ScoresRead(df.sort_values(keys, kind="stable").reset_index(drop=True), corrupt)


def read_predictions(predictions_dir: Path, target: str, split: str) -> pd.DataFrame:
    """Every readable cell's predictions of one target and split (damaged files left out: `xstilts status`
    names the cell), with the cell's intermediate and seed as columns."""
    root = Path(predictions_dir)
    frames = []
    for path in sorted(root.glob(f"intermediate=*/target={target}/seed=*/{PREDICTIONS_FILE}")):
        cell = _CELL_FOLDER.match(path.parent.relative_to(root).as_posix())
        try:
            table = pq.read_table(path, schema=PREDICTIONS_SCHEMA, filters=[("split", "=", split)])
        except (pa.ArrowException, OSError):
            continue
        if cell is not None:
            frames.append(table.to_pandas().assign(intermediate=cell["intermediate"], seed=int(cell["seed"])))
    columns = [*PREDICTIONS_SCHEMA.names, "intermediate", "seed"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def read_alignment(alignment_dir: Path) -> pd.DataFrame:
    """Every readable encoder's alignment probes (`alignment.align`; damaged files left out), with the
    encoder's intermediate and seed as columns."""
    frames = []
    for path in sorted(Path(alignment_dir).glob(f"intermediate=*/seed=*/{ALIGNMENT_FILE}")):
        try:
            frame = pd.read_parquet(path)
        except (pa.ArrowException, OSError):
            continue
        frames.append(frame.assign(intermediate=path.parent.parent.name.split("=", 1)[1],
                                   seed=int(path.parent.name.split("=", 1)[1])))
    columns = ["language", "layer", "measure", "value", "n", "intermediate", "seed"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def read_scores(scores_dir: Path) -> pd.DataFrame:
    """The readable scores of a tree (`scan_scores`), the damaged files left out."""
    return scan_scores(scores_dir).frame


def write_config(config: Mapping[str, Any], path: Path) -> None:
    """A run's resolved config as YAML, for its jobs to read; written only when it changed, so that
    planning the same grid again touches nothing."""
    import yaml

    text = yaml.safe_dump(json.loads(json.dumps(dict(config))), sort_keys=False, allow_unicode=True)
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        write_text(text, path)


# --------------------------------------------------------------------------------------------------
# Checkpoint manifests


def _manifest_path_str(checkpoint_dir: Path) -> str:
    """The path relative to the results directory's parent (the parent of the nearest `checkpoints`
    ancestor), e.g. "results/checkpoints/phase2/mnli"; the path as given when there is none."""
    resolved = Path(checkpoint_dir).resolve()
    for ancestor in resolved.parents:
        if ancestor.name == "checkpoints":
            return resolved.relative_to(ancestor.parent.parent).as_posix()
    return Path(checkpoint_dir).as_posix()


def manifest_row(checkpoint_dir: Path, *, phase: str, task: str, step: int, dev_metric: float,
                 run_facts: Mapping[str, Any]) -> dict:
    """One manifest row for a checkpoint directory.

    bytes: the summed size of its `*.safetensors` files; sha256: one digest over their contents
    concatenated in name order (for a single file, what `sha256sum model.safetensors` prints);
    run_facts: what the checkpoint was made with, as JSON.
    """
    weights = sorted(Path(checkpoint_dir).glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"no *.safetensors file in checkpoint {checkpoint_dir}")
    digest = hashlib.sha256()
    for file in weights:
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return {
        "path": _manifest_path_str(checkpoint_dir),
        "phase": phase,
        "task": task,
        "step": int(step),
        "dev_metric": float(dev_metric),
        "bytes": sum(f.stat().st_size for f in weights),
        "sha256": digest.hexdigest(),
        "run_facts": json.dumps(dict(run_facts), sort_keys=True),
    }


def write_manifest(rows: list[dict], path: Path) -> None:
    """Write manifest rows (keys exactly MANIFEST_COLUMNS) atomically as parquet."""
    for i, row in enumerate(rows):
        if set(row) != set(MANIFEST_COLUMNS):
            raise ValueError(f"{path}: manifest row {i} has keys {sorted(row)}, expected {MANIFEST_COLUMNS}")
    table = pa.Table.from_pylist([{c: row[c] for c in MANIFEST_COLUMNS} for row in rows], schema=MANIFEST_SCHEMA)
    _write_table(table, path)


def read_manifest(path: Path) -> pa.Table:
    """One checkpoint's manifest; ValueError says why it cannot be read (truncated, foreign)."""
    try:
        return pq.read_table(path, schema=MANIFEST_SCHEMA)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{path}: unreadable manifest: {str(err).splitlines()[0]}") from None


def collect_manifests(checkpoints_dir: Path) -> pd.DataFrame:
    """Concatenate the checkpoints' own manifests below `checkpoints_dir`, sorted by path.

    Hidden paths are skipped, and so is `checkpoints_dir/manifest.parquet` itself (the collected one), and
    so is a damaged one (`xstilts status` names it: the checkpoint is `corrupt`).
    """
    root = Path(checkpoints_dir)
    files = sorted(
        p
        for p in root.rglob(MANIFEST_FILE)
        if p.parent != root and not any(part.startswith(HIDDEN_PREFIXES) for part in p.relative_to(root).parts)
    )
    tables = []
    for file in files:
        try:
            tables.append(read_manifest(file))
        except ValueError:
            continue
    table = pa.concat_tables(tables) if tables else MANIFEST_SCHEMA.empty_table()
    return table.to_pandas().sort_values("path", kind="stable").reset_index(drop=True)
