"""`xstilts`: the command line every workflow rule calls, and that a person can call to debug one step.

Run `xstilts COMMAND --help`. JSON arguments are what the rules pass from the validated config.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from xstilts.catalogue import NAME_PATTERN

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: state saved; run the job again to resume
DETERMINISTIC_HELP = "deterministic kernels only (slower on GPUs; config `deterministic`)"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:80]!r}") from err


def _retrieval(text: str) -> dict[str, Any]:
    from xstilts.settings import RetrievalSettings

    values = _json(text)
    try:
        RetrievalSettings.from_dict(values)
    except (TypeError, ValueError) as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return values


def _config(files: list[Path]) -> dict[str, Any]:
    """The config merged from these files and checked (`xstilts.config`); a refusal exits with its few lines."""
    from xstilts.config import ConfigError, load_config

    try:
        return load_config(files)
    except ConfigError as err:
        print(f"xstilts: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _name(text: str) -> str:
    if not NAME_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a task/row name (lower-case letters, digits, _)")
    return text


def cmd_demo_data(a: argparse.Namespace) -> None:
    from xstilts.demo.world import DemoSizes, generate_hub_mirror

    generate_hub_mirror(a.out, a.languages, seed=a.seed, sizes=DemoSizes(**a.sizes), translations=a.translations)


def cmd_demo_pretrain(a: argparse.Namespace) -> None:
    from xstilts.demo.pretrain import TinyModel, pretrain

    print(json.dumps(pretrain(a.corpus, a.out, TinyModel(**a.spec))))


def cmd_fetch_model(a: argparse.Namespace) -> None:
    """Download a hub model once (login node), so GPU jobs load it from disk with the hub offline.

    Saved with its MLM head, which the MLM-mixed rows train; `AutoModel` loads the encoder alone."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from xstilts.results_io import atomic_path

    with atomic_path(a.out) as tmp:
        AutoTokenizer.from_pretrained(a.model).save_pretrained(tmp)
        AutoModelForMaskedLM.from_pretrained(a.model).save_pretrained(tmp, safe_serialization=True)


def cmd_init_untrained(a: argparse.Namespace) -> None:
    from xstilts.jobs import init_untrained

    init_untrained(like=a.like, out=a.out, seed=a.seed)


def cmd_prepare(a: argparse.Namespace) -> None:
    from xstilts.data import Sources, prepare_dataset, prepare_target

    sources = Sources.from_config(a.sources)
    if a.kind == "dataset":
        meta = prepare_dataset(a.name, a.out, sources, translations=a.translations)
    else:
        meta = prepare_target(a.name, a.languages, a.out, sources)
    print(json.dumps(meta["rows"]))


def _without_option(argv: list[str], option: str) -> list[str]:
    """`argv` less one option and its value (`--opt V` or `--opt=V`)."""
    out, skip = [], False
    for arg in argv:
        if skip or arg == option or arg.startswith(option + "="):
            skip = arg == option
            continue
        out.append(arg)
    return out


def cmd_train(a: argparse.Namespace) -> int | None:
    if a.nproc > 1 and "LOCAL_RANK" not in os.environ:  # one process per GPU: relaunch under torchrun
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={a.nproc}",
               "-m", "xstilts.cli", *_without_option(a.argv, "--nproc")]
        return subprocess.call(cmd)
    from xstilts.jobs import MLMMix, train_phase
    from xstilts.training import Sampling

    summary = train_phase(phase=a.phase, tasks=a.tasks, init=a.init, data_dir=a.data, out=a.out,
                          state_dir=a.state, hparams=a.hparams, seed=a.seed, sampling=Sampling(**a.sampling),
                          mlm=MLMMix(**a.mlm) if a.mlm else None, save_every=a.save_every,
                          stop_after=a.stop_after, deterministic=a.deterministic)
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line, from the first of the processes
        print(json.dumps(summary))


def cmd_evaluate(a: argparse.Namespace) -> None:
    from xstilts.jobs import evaluate_cell

    scores = evaluate_cell(target=a.target, model_dir=a.model, data_dir=a.data, out=a.out,
                           hparams=a.hparams, retrieval_settings=a.retrieval, seed=a.seed,
                           deterministic=a.deterministic)
    print(scores.to_string(index=False))


def cmd_aggregate(a: argparse.Namespace) -> None:
    from xstilts.aggregate import write_tables
    from xstilts.results_io import collect_manifests, read_scores, write_parquet

    scores = read_scores(a.scores)
    written = write_tables(scores, a.out, a.rows, a.targets)
    manifests = None
    if a.checkpoints and a.checkpoints.is_dir():
        manifests = collect_manifests(a.checkpoints)
        write_parquet(manifests, a.checkpoints / "manifest.parquet")
    if a.report:
        from xstilts.report import write_report

        refresh = shlex.join(["xstilts", "aggregate", "--scores", str(a.scores), "--out", str(a.out), "--rows",
                              *a.rows, "--targets", *a.targets, "--seeds", *map(str, a.seeds), "--report",
                              str(a.report)] + (["--variants", json.dumps(a.variants)] if a.variants else [])
                             + (["--checkpoints", str(a.checkpoints)] if a.checkpoints else []))
        written += write_report(scores, a.report, a.out, rows=a.rows, targets=a.targets, seeds=a.seeds,
                                variants=a.variants, refresh=refresh, manifests=manifests)
    print("\n".join(str(p) for p in written))


def cmd_status(a: argparse.Namespace) -> None:
    """Print the grid's cells as a matrix of states with the hours spent."""
    from xstilts.status import grid_status, make_grid, render_status

    config = _config(a.configfile)
    grid = make_grid(a.results or Path(config.get("results", "results")), config["rows"], list(config["targets"]),
                     config.get("seeds", [1]), config.get("variants"))
    print(render_status(grid_status(grid), grid), end="")


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
    # Snakemake's own arguments last: a trailing `--configfile A B` would swallow the targets.
    profiles = [x for profile in a.profile or ["profiles/local"] for x in ("--profile", profile)]
    cmd = [sys.executable, "-m", "snakemake", *profiles, *forced, str(results / "tables" / "transfer.md"),
           "--forcerun", *forced, *a.snakemake_args]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def cmd_submit(a: argparse.Namespace) -> None:
    """Submit cells as SLURM job arrays through submitit (see xstilts.submit)."""
    from xstilts.grid import Grid
    from xstilts.submit import WORKFLOW_PROFILE, parse_cells, profile_file, submit

    config = _config(a.configfile)
    profile, workflow_profile = profile_file(a.profile), WORKFLOW_PROFILE.resolve()  # found from here, as Snakemake
    if a.directory:
        os.chdir(a.directory)
    for step, job in submit(parse_cells(a.cells, Grid(config), a.seed), config=config, profile=profile,
                            folder=a.folder, workflow_profile=workflow_profile):
        print(f"{job.job_id} {step.rule} {step.row} {step.task} seed={step.seed}", flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xstilts", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo-data", help="generate the demo's hub-schema data sets and corpus")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--languages", type=_json, required=True, help='{"xnli": ["en", "de"], ...}')
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sizes", type=_json, default={})
    s.add_argument("--translations", type=_json, default={}, help='stand-ins for MT data: {"mnli": ["de"]}')
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

    s = sub.add_parser("init-untrained", help="the untrained control's encoder: a model's architecture, random weights")
    s.add_argument("--like", type=Path, required=True, help="the base model folder")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(func=cmd_init_untrained)

    s = sub.add_parser("prepare", help="load a task from its source into the parquet cache")
    s.add_argument("kind", choices=["dataset", "target"])
    s.add_argument("name", type=_name)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--languages", nargs="*", default=[])
    s.add_argument("--sources", type=_json, default={})
    s.add_argument("--translations", type=_json, default=None,
                   help='added to the training split: {"source": HUB_ID_OR_DIR, "languages": [...]}')
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
    s.add_argument("--mlm", type=_json, default=None, help='MLM mixing: {"corpus": DIR, "ratio": 0.25}')
    s.add_argument("--save-every", type=int, default=0)
    s.add_argument("--nproc", type=int, default=1, help="processes (GPUs) for data parallelism, via torchrun")
    s.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    s.add_argument("--deterministic", action="store_true", help=DETERMINISTIC_HELP)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="score one cell: every language of one target")
    s.add_argument("--target", type=_name, required=True)
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--hparams", type=_json, default={})
    s.add_argument("--retrieval", type=_retrieval, default={},
                   help='BUCC/Tatoeba: {"pooling": "mean"|"cls", "layer": N, "max_length": N, "batch_size": N, '
                        '"k": N, "duplicates": "xtreme"|"jiant"}')
    s.add_argument("--seed", type=int, default=1, help="the cell's seed (recorded in the run facts)")
    s.add_argument("--deterministic", action="store_true", help=DETERMINISTIC_HELP)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("aggregate", help="transfer tables and heatmaps from every scores.parquet")
    s.add_argument("--scores", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--rows", nargs="+", required=True)
    s.add_argument("--targets", nargs="+", required=True)
    s.add_argument("--checkpoints", type=Path, default=None)
    s.add_argument("--report", type=Path, default=None,
                   help="also write README.md and report.html (and the claims, languages and plots) here")
    s.add_argument("--seeds", nargs="+", type=int, default=[1], help="the grid's seeds (for --report)")
    s.add_argument("--variants", type=_json, default={}, help="the config's `variants` (for --report)")
    s.set_defaults(func=cmd_aggregate)

    s = sub.add_parser("status", help="the grid as a matrix of cell states (done, running, failed, missing)")
    s.add_argument("--configfile", nargs="+", type=Path, default=[Path("config.yaml")],
                   help="config files, merged in order as snakemake --configfile does")
    s.add_argument("--results", type=Path, default=None, help="default: the config's `results`")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("rerun", help="redo one cell of the grid (and the tables) with Snakemake")
    s.add_argument("row", type=_name)
    s.add_argument("target", type=_name)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--profile", action="append", help="Snakemake profile; given twice, the second overrides "
                   "the first's top-level keys (default: profiles/local)")
    s.add_argument("--results", default="results")
    s.set_defaults(func=cmd_rerun, passes_unknown=True)  # other options go on to snakemake

    s = sub.add_parser("submit", help="submit cells as SLURM job arrays with submitit (requeued and resumed)")
    s.add_argument("cells", nargs="*", help="ROW:TARGET, e.g. mnli:xnli (default: every cell of the config)")
    s.add_argument("--seed", type=int, default=None, help="default: every seed of the config")
    s.add_argument("--configfile", nargs="+", type=Path, default=[Path("config.yaml")])
    s.add_argument("--profile", type=Path, default=Path("profiles/slurm"),
                   help="the cluster profile (partition, account, GPU model): a folder, or a name as for snakemake")
    s.add_argument("--directory", type=Path, default=None, help="the workflow's working directory")
    s.add_argument("--folder", type=Path, default=None, help="submitit's files (default: RESULTS/submitit)")
    s.set_defaults(func=cmd_submit)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, unknown = p.parse_known_args(argv)
    if unknown and not getattr(args, "passes_unknown", False):
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.snakemake_args, args.argv = unknown, list(sys.argv[1:] if argv is None else argv)
    if args.command in ("train", "evaluate"):  # jobs read only the prepared cache: fail at once, never wait
        for switch in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # (set before transformers is imported)
            os.environ.setdefault(switch, "1")
    from xstilts.errors import DataError, Preempted, TrainingError

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
