"""`xstilts`: the command line every workflow rule calls, and that a person can call to debug one step.

Run `xstilts COMMAND --help`. JSON arguments are what the rules pass from the validated config.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from xstilts.catalogue import NAME_PATTERN

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: state saved; run the job again to resume


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:80]!r}") from err


def _name(text: str) -> str:
    if not NAME_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a task/row name (lower-case letters, digits, _)")
    return text


def cmd_demo_data(a: argparse.Namespace) -> None:
    from xstilts.demo.world import DemoSizes, generate_hub_mirror

    generate_hub_mirror(a.out, a.languages, seed=a.seed, sizes=DemoSizes(**a.sizes))


def cmd_demo_pretrain(a: argparse.Namespace) -> None:
    from xstilts.demo.pretrain import TinyModel, pretrain

    print(json.dumps(pretrain(a.corpus, a.out, TinyModel(**a.spec))))


def cmd_fetch_model(a: argparse.Namespace) -> None:
    """Download a hub model once (login node), so GPU jobs load it from disk with the hub offline."""
    from transformers import AutoModel, AutoTokenizer

    from xstilts.results_io import atomic_path

    with atomic_path(a.out) as tmp:
        AutoTokenizer.from_pretrained(a.model).save_pretrained(tmp)
        AutoModel.from_pretrained(a.model).save_pretrained(tmp, safe_serialization=True)


def cmd_prepare(a: argparse.Namespace) -> None:
    from xstilts.data import Sources, prepare_dataset, prepare_target

    sources = Sources.from_config(a.sources)
    if a.kind == "dataset":
        meta = prepare_dataset(a.name, a.out, sources)
    else:
        meta = prepare_target(a.name, a.languages, a.out, sources)
    print(json.dumps(meta["rows"]))


def cmd_train(a: argparse.Namespace) -> None:
    from xstilts.jobs import train_phase
    from xstilts.training import Sampling

    summary = train_phase(phase=a.phase, tasks=a.tasks, init=a.init, data_dir=a.data, out=a.out,
                          state_dir=a.state, hparams=a.hparams, seed=a.seed, sampling=Sampling(**a.sampling),
                          save_every=a.save_every, stop_after=a.stop_after)
    print(json.dumps(summary))


def cmd_evaluate(a: argparse.Namespace) -> None:
    from xstilts.jobs import evaluate_cell

    scores = evaluate_cell(target=a.target, model_dir=a.model, data_dir=a.data, out=a.out,
                           hparams=a.hparams, retrieval_settings=a.retrieval)
    print(scores.to_string(index=False))


def cmd_aggregate(a: argparse.Namespace) -> None:
    from xstilts.aggregate import write_tables
    from xstilts.results_io import collect_manifests, read_scores, write_parquet

    written = write_tables(read_scores(a.scores), a.out, a.rows, a.targets)
    if a.checkpoints and a.checkpoints.is_dir():
        write_parquet(collect_manifests(a.checkpoints), a.checkpoints / "manifest.parquet")
    print("\n".join(str(p) for p in written))


def cmd_rerun(a: argparse.Namespace) -> int:
    """Redo one cell (its target training, evaluation and the tables) through Snakemake."""
    from xstilts.catalogue import TARGETS

    if a.target not in TARGETS:
        raise SystemExit(f"unknown target {a.target!r}; choose one of {', '.join(TARGETS)}")
    results = Path(a.results)
    cell = results / "scores" / f"intermediate={a.row}" / f"target={a.target}" / f"seed={a.seed}" / "scores.parquet"
    forced = [str(cell)]
    trainset = TARGETS[a.target].trainset
    if trainset:
        forced.append(str(results / "checkpoints" / "target" / a.row / trainset / f"seed={a.seed}"))
    cmd = ["snakemake", "--profile", a.profile, *a.snakemake_args, *forced,
           str(results / "tables" / "transfer.md"), "--forcerun", *forced]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xstilts", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo-data", help="generate the demo's hub-schema data sets and corpus")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--languages", type=_json, required=True, help='{"xnli": ["en", "de"], ...}')
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sizes", type=_json, default={})
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("demo-pretrain", help="train the demo tokenizer and tiny XLM-R (phase i)")
    s.add_argument("--corpus", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--spec", type=_json, default={})
    s.set_defaults(func=cmd_demo_pretrain)

    s = sub.add_parser("fetch-model", help="download a hub model to a local folder")
    s.add_argument("model")
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=cmd_fetch_model)

    s = sub.add_parser("prepare", help="load a task from its source into the parquet cache")
    s.add_argument("kind", choices=["dataset", "target"])
    s.add_argument("name", type=_name)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--languages", nargs="*", default=[])
    s.add_argument("--sources", type=_json, default={})
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("train", help="phase (ii) or (iii) training of one model")
    s.add_argument("--phase", choices=["intermediate", "target"], required=True)
    s.add_argument("--tasks", nargs="+", type=_name, required=True)
    s.add_argument("--init", type=Path, required=True, help="encoder folder to start from")
    s.add_argument("--data", type=Path, required=True, help="prepared data cache")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--state", type=Path, required=True, help="resumable state (not a rule output)")
    s.add_argument("--hparams", type=_json, required=True, help='{"task": {"lr": ..., ...}}')
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--sampling", type=_json, default={})
    s.add_argument("--save-every", type=int, default=0)
    s.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="score one cell: every language of one target")
    s.add_argument("--target", type=_name, required=True)
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--hparams", type=_json, default={})
    s.add_argument("--retrieval", type=_json, default={})
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("aggregate", help="transfer tables and heatmaps from every scores.parquet")
    s.add_argument("--scores", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--rows", nargs="+", required=True)
    s.add_argument("--targets", nargs="+", required=True)
    s.add_argument("--checkpoints", type=Path, default=None)
    s.set_defaults(func=cmd_aggregate)

    s = sub.add_parser("rerun", help="redo one cell of the grid (and the tables) with Snakemake")
    s.add_argument("row", type=_name)
    s.add_argument("target", type=_name)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--profile", default="profiles/local")
    s.add_argument("--results", default="results")
    s.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="passed on to snakemake")
    s.set_defaults(func=cmd_rerun)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from xstilts.data import DataError
    from xstilts.training import Preempted, TrainingError

    try:
        return args.func(args) or 0
    except Preempted as err:
        print(f"xstilts: {err}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except (DataError, TrainingError) as err:
        print(f"xstilts: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
