"""results_io: atomic writes, the hive score tree, checkpoint manifests."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from xstilts.config import ConfigError, load_config
from xstilts.layout import Layout
from xstilts.results_io import (
    MANIFEST_COLUMNS,
    PREDICTIONS_SCHEMA,
    SCORE_COLUMNS,
    atomic_path,
    collect_manifests,
    manifest_row,
    read_scores,
    scan_scores,
    write_config,
    write_manifest,
    write_parquet,
    write_predictions,
    write_scores,
    write_text,
)

ROOT = Path(__file__).resolve().parents[1]


def scores_path(results: Path, row: str, target: str, seed: int) -> Path:
    return Layout(results).scores(row, target, seed)

RUN = {"model": "xlm-roberta-large", "steps": 100, "wall_seconds": 12.5, "device": "NVIDIA H100",
       "run_facts": {"seed": 1, "threads": {"torch": 8}}}


def _row(language: str, value: float, split: str = "test", metric: str = "accuracy") -> dict:
    return {"language": language, "split": split, "metric": metric, "value": value, "n_examples": 10}


# ---------------------------------------------------------------------------------------------- atomic


def test_atomic_file_replaces_destination(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.txt"
    write_text("old", target)
    write_text("new", target)
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_atomic_write_leaves_no_file_on_exception(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.name.endswith(".tmp")
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_on_exception(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_text("good", target)
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_directory_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    for content in ("v1", "v2"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "weights.txt").write_text(content)
    assert (target / "weights.txt").read_text() == "v2"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.mkdir()
        raise ValueError
    assert (target / "weights.txt").read_text() == "v2"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_path_without_write_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "x"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_write_parquet_creates_parents(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="row"))
    path = tmp_path / "deep" / "er" / "t.parquet"
    write_parquet(df, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)


# ---------------------------------------------------------------------------------------------- scores


def test_scores_path_layout_and_checks(tmp_path: Path) -> None:
    path = scores_path(tmp_path, "mnli", "xnli", 2)
    assert path == tmp_path / "scores" / "intermediate=mnli" / "target=xnli" / "seed=2" / "scores.parquet"
    # names reach paths only through the checked config: bad rows, targets and seeds are refused there
    for row, target, seed in (("../x", "xnli", 0), ("mnli", "nope", 0), ("mnli", "xnli", -1), ("Mnli", "xnli", 0)):
        with pytest.raises(ValueError):
            load_config([ROOT / "config.yaml"], overrides={"rows": [row], "targets": [target], "seeds": [seed]})
    assert issubclass(ConfigError, ValueError)


def test_write_scores_exact_columns_and_dtypes(tmp_path: Path) -> None:
    path = scores_path(tmp_path, "mnli", "xnli", 0)
    write_scores([_row("en", 80), _row("de", 70.5)], path, **RUN)
    schema = pq.read_schema(path)
    assert tuple(schema.names) == SCORE_COLUMNS
    assert not {"intermediate", "target", "seed"} & set(schema.names)
    df = pd.read_parquet(path)
    assert str(df["value"].dtype) == "float64" and str(df["n_examples"].dtype) == "int64"
    assert str(df["steps"].dtype) == "int64" and str(df["wall_seconds"].dtype) == "float64"
    assert df["language"].tolist() == ["en", "de"] and df["value"].tolist() == [80.0, 70.5]
    assert set(df["device"]) == {"NVIDIA H100"} and set(df["steps"]) == {100}
    assert [json.loads(f) for f in df["run_facts"]] == [RUN["run_facts"]] * 2


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{**_row("en", 80), "seed": 0}],  # partition keys live in folder names only
        [{k: v for k, v in _row("en", 80).items() if k != "n_examples"}],
        [_row("en", math.nan)],
        [_row("en", 80), _row("en", 81)],  # duplicate (language, split, metric)
        [{**_row("en", 80), "n_examples": -1}],
        [{**_row("en", 80), "language": ""}],
    ],
)
def test_write_scores_rejects_bad_rows(tmp_path: Path, rows: list[dict]) -> None:
    path = scores_path(tmp_path, "mnli", "xnli", 0)
    with pytest.raises(ValueError):
        write_scores(rows, path, **RUN)
    assert not path.exists()


def _grid(results: Path) -> None:
    write_scores([_row("en", 80), _row("de", 70)], scores_path(results, "none", "xnli", 0), **RUN)
    write_scores([_row("en", 90)], scores_path(results, "mnli", "xnli", 1), **RUN)
    qa = [_row("en", 60, "validation", "f1"), _row("en", 50, "validation", "exact_match")]
    write_scores(qa, scores_path(results, "mnli", "xquad", 0), **RUN)


def test_read_scores_round_trip_with_partition_columns(tmp_path: Path) -> None:
    _grid(tmp_path)
    # A crashed writer's leftovers (hidden temp file and temp folder) are never read.
    cell = scores_path(tmp_path, "none", "xnli", 0).parent
    (cell / ".scores.parquet.abc.tmp").write_bytes(b"half-written")
    hidden = tmp_path / "scores" / ".intermediate=x.tmp" / "target=xnli" / "seed=0"
    hidden.mkdir(parents=True)
    (hidden / "scores.parquet").write_bytes(b"junk")
    df = read_scores(tmp_path / "scores")
    assert list(df.columns) == ["intermediate", "target", "seed", *SCORE_COLUMNS]
    assert str(df["seed"].dtype) == "int64"
    assert str(df["intermediate"].dtype) in ("str", "string", "object")
    got = df[["intermediate", "target", "seed", "language", "metric", "value"]].values.tolist()
    assert got == [
        ["mnli", "xnli", 1, "en", "accuracy", 90.0],
        ["mnli", "xquad", 0, "en", "exact_match", 50.0],
        ["mnli", "xquad", 0, "en", "f1", 60.0],
        ["none", "xnli", 0, "de", "accuracy", 70.0],
        ["none", "xnli", 0, "en", "accuracy", 80.0],
    ]


def test_pandas_reads_the_tree_directly(tmp_path: Path) -> None:
    _grid(tmp_path)
    (scores_path(tmp_path, "none", "xnli", 0).parent / ".scores.parquet.abc.tmp").write_bytes(b"x")
    df = pd.read_parquet(tmp_path / "scores")
    assert len(df) == 5
    assert {"intermediate", "target", "seed"} <= set(df.columns)
    assert sorted(df["intermediate"].astype(str).unique()) == ["mnli", "none"]
    assert sorted(df["seed"].astype(int).unique()) == [0, 1]


def test_conditions_are_a_column_and_default_to_clean(tmp_path: Path) -> None:
    path = scores_path(tmp_path, "mnli", "xnli", 0)
    write_scores([_row("en", 80), {**_row("en", 60), "condition": "char_noise"}], path, **RUN)
    df = read_scores(tmp_path / "scores")
    assert dict(zip(df["condition"], df["value"], strict=True)) == {"char_noise": 60.0, "clean": 80.0}
    with pytest.raises(ValueError, match="duplicate"):
        write_scores([_row("en", 80), {**_row("en", 81), "condition": "clean"}], path, **RUN)
    old = pd.read_parquet(path).drop(columns="condition")  # written before conditions existed: all clean
    write_parquet(old, scores_path(tmp_path, "none", "xnli", 0))
    assert set(read_scores(tmp_path / "scores").query("intermediate == 'none'")["condition"]) == {"clean"}


def test_damaged_or_foreign_scores_are_named_not_raised(tmp_path: Path) -> None:
    """A truncated scores.parquet (a full disk, a bad copy) or a file that is not a scores file: every
    other cell is read, and the damaged ones are named with why."""
    _grid(tmp_path)
    truncated = scores_path(tmp_path, "none", "xnli", 0)
    truncated.write_bytes(truncated.read_bytes()[:100])
    foreign = scores_path(tmp_path, "mnli", "xquad", 0)
    write_parquet(pd.DataFrame({"something": [1]}), foreign)
    stray = tmp_path / "scores" / "elsewhere" / "scores.parquet"
    write_parquet(pd.DataFrame({"x": [1]}), stray)
    read = scan_scores(tmp_path / "scores")
    assert read.frame[["intermediate", "target"]].drop_duplicates().values.tolist() == [["mnli", "xnli"]]
    assert set(read.corrupt) == {truncated, foreign, stray}
    assert "unreadable" in read.corrupt[truncated] and "no column" in read.corrupt[foreign]
    assert "intermediate=I/target=T/seed=S" in read.corrupt[stray]
    assert len(read_scores(tmp_path / "scores")) == 1


def test_predictions_schema(tmp_path: Path) -> None:
    rows = [{"language": "de", "split": "test", "condition": "clean", "id": "7", "prediction": "entailment",
             "gold": "neutral", "score": 0.0}, {"language": "de", "split": "test", "condition": "clean", "id": "8",
                                                  "prediction": '["NOUN"]', "gold": '["NOUN"]', "score": None}]
    path = tmp_path / "predictions.parquet"
    write_predictions(rows, path)
    assert pq.read_schema(path).equals(PREDICTIONS_SCHEMA)
    df = pd.read_parquet(path)
    assert df["id"].tolist() == ["7", "8"] and df["score"].isna().tolist() == [False, True]


def test_resolved_config_is_written_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write_config({"rows": ["none"], "seeds": [1]}, path)
    assert yaml.safe_load(path.read_text()) == {"rows": ["none"], "seeds": [1]}
    stamp = path.stat().st_mtime_ns
    write_config({"rows": ["none"], "seeds": [1]}, path)
    assert path.stat().st_mtime_ns == stamp
    write_config({"rows": ["none"], "seeds": [2]}, path)
    assert yaml.safe_load(path.read_text())["seeds"] == [2]


def test_read_scores_empty(tmp_path: Path) -> None:
    for directory in (tmp_path / "missing", tmp_path):
        df = read_scores(directory)
        assert df.empty and list(df.columns) == ["intermediate", "target", "seed", *SCORE_COLUMNS]
        assert str(df["seed"].dtype) == "int64" and str(df["value"].dtype) == "float64"


# ---------------------------------------------------------------------------------------------- manifest


def test_manifest_row_and_collect(tmp_path: Path) -> None:
    results = tmp_path / "results"
    ckpt = results / "checkpoints" / "phase2" / "mnli"
    ckpt.mkdir(parents=True)
    (ckpt / "model-00001.safetensors").write_bytes(b"abc")
    (ckpt / "model-00002.safetensors").write_bytes(b"defg")
    (ckpt / "config.json").write_text("{}")  # not counted
    row = manifest_row(ckpt, phase="intermediate", task="mnli", step=500, dev_metric=85.25, run_facts={"seed": 1})
    assert row["path"] == "results/checkpoints/phase2/mnli"
    assert row["bytes"] == 3 + 4
    assert row["sha256"] == hashlib.sha256(b"abcdefg").hexdigest()  # contents in name order
    write_manifest([row], ckpt / "manifest.parquet")

    other = results / "checkpoints" / "phase3" / "none" / "squad"
    other.mkdir(parents=True)
    (other / "model.safetensors").write_bytes(b"xyz")
    row2 = manifest_row(other, phase="target", task="squad", step=10, dev_metric=70.0, run_facts={"seed": 2})
    assert row2["sha256"] == hashlib.sha256(b"xyz").hexdigest()
    write_manifest([row2], other / "manifest.parquet")
    hidden = results / "checkpoints" / ".phase3.tmp"
    hidden.mkdir()
    (hidden / "manifest.parquet").write_bytes(b"junk")
    damaged = results / "checkpoints" / "phase3" / "none" / "udpos"
    damaged.mkdir(parents=True)
    (damaged / "manifest.parquet").write_bytes(b"truncated")  # left out (status names it corrupt)

    df = collect_manifests(results / "checkpoints")
    assert list(df.columns) == list(MANIFEST_COLUMNS)
    # The collected manifest written at the top is not collected again on the next run.
    write_parquet(df, results / "checkpoints" / "manifest.parquet")
    pd.testing.assert_frame_equal(collect_manifests(results / "checkpoints"), df)
    assert df["path"].tolist() == ["results/checkpoints/phase2/mnli", "results/checkpoints/phase3/none/squad"]
    assert df["step"].tolist() == [500, 10] and str(df["bytes"].dtype) == "int64"
    assert [json.loads(f)["seed"] for f in df["run_facts"]] == [1, 2]


def test_manifest_edge_cases(tmp_path: Path) -> None:
    bare = tmp_path / "ckpt"
    bare.mkdir()
    with pytest.raises(FileNotFoundError):
        manifest_row(bare, phase="target", task="xnli", step=1, dev_metric=1.0, run_facts={})
    (bare / "model.safetensors").write_bytes(b"1")
    row = manifest_row(bare, phase="target", task="xnli", step=1, dev_metric=1.0, run_facts={})
    assert row["path"] == bare.as_posix()  # no `checkpoints` ancestor: the path as given
    with pytest.raises(ValueError):
        write_manifest([{**row, "extra": 1}], bare / "manifest.parquet")
    empty = collect_manifests(tmp_path / "none")
    assert empty.empty and list(empty.columns) == list(MANIFEST_COLUMNS)
