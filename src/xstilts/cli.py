"""`xstilts`: the command line every workflow rule calls, and that a person can call to debug one step.

A job is named by its identity (`xstilts evaluate mnli xnli --seed 1`); its settings come from the config
files (`--configfile`, merged as Snakemake merges them; the rules pass the run's resolved config,
`results/config.yaml`), through the job spec the grid builds (`xstilts.specs`). `--show` prints that spec
instead of running the job. Run `xstilts COMMAND --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# The jobs that import torch and transformers: with a local run's warm-start process (`xstilts.warm`) they
# start as its children instead of paying the imports.
WARM_COMMANDS = frozenset({"train", "evaluate", "align", "init-untrained", "demo-pretrain"})
# Jobs that read only prepared caches: the hub switched off (before transformers is imported), so that a
# missing file fails at once instead of waiting on the network; the resident process (`xstilts.warm`) too.
OFFLINE_COMMANDS = frozenset({"train", "evaluate", "align"})
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: state saved; run the job again to resume
DEFAULT_CONFIG = [Path("config.yaml")]


def _grid(a: argparse.Namespace) -> Any:
    from xstilts.config import load_config
    from xstilts.grid import Grid

    return Grid(load_config(a.configfile))


def _spec(a: argparse.Namespace, rule: str, **identity: Any) -> Any:
    """The job's spec from the grid; printed and None with --show."""
    return _show(a, _grid(a).spec(rule, **identity))


def _show(a: argparse.Namespace, spec: Any) -> Any:
    if a.show:
        print(json.dumps(spec.to_json(), indent=1, sort_keys=True))
        return None
    return spec


def cmd_demo_data(a: argparse.Namespace) -> None:
    if spec := _spec(a, "demo_data"):
        from xstilts.jobs import demo_data

        demo_data(spec)


def cmd_demo_pretrain(a: argparse.Namespace) -> None:
    if spec := _spec(a, "demo_pretrain"):
        from xstilts.jobs import demo_pretrain

        print(json.dumps(demo_pretrain(spec)))


def cmd_fetch_model(a: argparse.Namespace) -> None:
    if spec := _spec(a, "fetch_model"):
        from xstilts.jobs import fetch_model

        fetch_model(spec)


def cmd_init_untrained(a: argparse.Namespace) -> None:
    if spec := _spec(a, "init_untrained", seed=a.seed):
        from xstilts.jobs import init_untrained

        init_untrained(spec)


def cmd_prepare(a: argparse.Namespace) -> None:
    if spec := _spec(a, f"prepare_{a.what}", **{"dataset" if a.what == "dataset" else "target": a.name}):
        from xstilts.jobs import prepare

        print(json.dumps(prepare(spec)["rows"]))


def cmd_train(a: argparse.Namespace) -> int | None:
    if (a.phase == "target") != (a.trainset is not None):
        raise SystemExit("xstilts train: phase `target` takes ROW TRAINSET, phase `intermediate` ROW only")
    identity = {"row": a.row, "seed": a.seed, **({"trainset": a.trainset} if a.trainset else {})}
    spec = _spec(a, f"train_{a.phase}", **identity)
    if spec is None:
        return None
    from xstilts.launch import next_command

    try:  # srun for a job of several tasks, torchrun for several processes (xstilts.launch)
        cmd = next_command(spec.size, os.environ, a.argv)
    except (RuntimeError, ValueError) as err:
        raise SystemExit(f"xstilts train: {err}") from None
    if cmd:  # this process becomes it: SLURM's signals reach it, its exit is the job's
        os.execvp(cmd[0], cmd)
    from xstilts.jobs import train

    summary = train(spec, stop_after=a.stop_after)
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line, from the first of the processes
        print(json.dumps(summary))
    return None


def cmd_evaluate(a: argparse.Namespace) -> None:
    if spec := _spec(a, "evaluate", row=a.row, target=a.target, seed=a.seed):
        from xstilts.jobs import evaluate

        print(evaluate(spec).to_string(index=False))


def cmd_align(a: argparse.Namespace) -> None:
    if spec := _spec(a, "align", row=a.row, seed=a.seed):
        from xstilts.alignment import align

        print(align(spec).to_string(index=False))


def cmd_aggregate(a: argparse.Namespace) -> None:
    grid = _grid(a)
    if _show(a, grid.aggregate()):
        from xstilts.report import aggregate

        print("\n".join(str(p) for p in aggregate(grid)))


def cmd_status(a: argparse.Namespace) -> None:
    """Print the grid's cells as a matrix of states with the hours spent."""
    from xstilts.status import grid_status, render_status

    grid = _grid(a)
    print(render_status(grid_status(grid), grid), end="")


def cmd_plan(a: argparse.Namespace) -> int:
    """Print the grid's bill, write results/plan.parquet; --check refuses too small resources; --suggest
    writes a config overlay of resources sized by the plan."""
    import yaml

    from xstilts.devices import DEVICES
    from xstilts.plan import check, plan, render, suggested_resources
    from xstilts.results_io import write_parquet, write_text

    grid = _grid(a)
    try:
        frame = plan(grid)
    except ValueError as err:  # a model of unknown architecture
        from xstilts.config import ConfigError

        raise ConfigError(str(err)) from None
    print(render(frame), end="")
    write_parquet(frame.drop(columns=["key"]), grid.layout.plan)
    print(f"written: {grid.layout.plan}")
    if a.suggest:
        write_text(yaml.safe_dump(suggested_resources(grid, frame), sort_keys=False), a.suggest)
        print(f"written: {a.suggest} (resources sized by this plan: add it to --configfile)")
    if a.check and (problems := check(frame, DEVICES[grid.plan_settings.device])):
        print(f"xstilts plan --check: {len(problems)} job(s) ask for too little:", file=sys.stderr)
        print("\n".join(f"  {p}" for p in problems[:20]), file=sys.stderr)
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more", file=sys.stderr)
        return 2
    return 0


def cmd_rerun(a: argparse.Namespace) -> int:
    """Redo one cell (its target training, evaluation and the tables) through Snakemake."""
    from xstilts.config import load_config
    from xstilts.grid import Grid
    from xstilts.status import rerun_command
    from xstilts.submit import profile_settings

    profiles = a.profile or ["profiles/local"]
    files = a.configfile or profile_settings(profiles).get("configfile") or DEFAULT_CONFIG  # as Snakemake reads
    cmd = rerun_command(Grid(load_config(files)), a.row, a.target, a.seed, profiles=profiles,
                        configfiles=a.configfile or (), intermediate=a.intermediate, extra=a.snakemake_args)
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def cmd_submit(a: argparse.Namespace) -> None:
    """Submit cells as SLURM job arrays through submitit (see xstilts.submit)."""
    from xstilts.submit import WORKFLOW_PROFILE, parse_cells, profile_file, submit

    grid = _grid(a)
    profile, workflow_profile = profile_file(a.profile), WORKFLOW_PROFILE.resolve()  # found from here, as Snakemake
    if a.directory:
        os.chdir(a.directory)
    for spec, job in submit(parse_cells(a.cells, grid, a.seed), config=grid.config, profile=profile,
                            folder=a.folder, workflow_profile=workflow_profile):
        print(f"{job.job_id} {' '.join(spec.key)}", flush=True)


def _job(sub: Any, name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
    """A job command: the job's identity, the config files, --show."""
    s = sub.add_parser(name, help=help_text)
    s.add_argument("--configfile", nargs="+", type=Path, default=DEFAULT_CONFIG,
                   help="config files, merged in order as snakemake --configfile does (the rules pass "
                        "results/config.yaml, the resolved config of the run)")
    s.add_argument("--show", action="store_true", help="print the job's spec (paths, settings) and exit")
    s.set_defaults(func=func)
    return s


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xstilts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    _job(sub, "demo-data", "generate the demo's hub-schema data sets, local sources and corpus", cmd_demo_data)
    _job(sub, "demo-pretrain", "train the demo tokenizer and tiny XLM-R (phase i)", cmd_demo_pretrain)
    _job(sub, "fetch-model", "download the configured hub model to results/base_model", cmd_fetch_model)
    s = _job(sub, "init-untrained", "the untrained control's encoder: the base model's architecture, random "
             "weights", cmd_init_untrained)
    s.add_argument("--seed", type=int, default=1)
    s = _job(sub, "prepare", "load a task from its source into the parquet cache", cmd_prepare)
    s.add_argument("what", choices=["dataset", "target"])
    s.add_argument("name", help="a dataset (training data) or a target (evaluation data) of the grid")
    s = _job(sub, "train", "phase (ii) training of a row, or phase (iii) of a row on a training set", cmd_train)
    s.add_argument("phase", choices=["intermediate", "target"])
    s.add_argument("row")
    s.add_argument("trainset", nargs="?", help="phase (iii): the English training set (mnli, squad, ...)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    s = _job(sub, "evaluate", "score one cell: every language of one target", cmd_evaluate)
    s.add_argument("row")
    s.add_argument("target")
    s.add_argument("--seed", type=int, default=1)
    s = _job(sub, "align", "alignment probes of one row's phase-(ii) encoder at every layer", cmd_align)
    s.add_argument("row")
    s.add_argument("--seed", type=int, default=1)
    _job(sub, "aggregate", "tables, plots, results/README.md and report.html from every scores.parquet",
         cmd_aggregate)

    s = sub.add_parser("status", help="the grid as a matrix of cell states (done, running, failed, corrupt, missing)")
    s.add_argument("--configfile", nargs="+", type=Path, default=DEFAULT_CONFIG,
                   help="config files, merged in order as snakemake --configfile does")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("plan", help="the grid's bill before the run: tokens, FLOPs, memory, GPU-hours per job")
    s.add_argument("--configfile", nargs="+", type=Path, default=DEFAULT_CONFIG,
                   help="config files, merged in order as snakemake --configfile does")
    s.add_argument("--check", action="store_true",
                   help="exit 2 naming each job whose resources ask for too little memory or time")
    s.add_argument("--suggest", type=Path, default=None,
                   help="write a config overlay whose resources (and execution) are sized by the plan")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("rerun", help="redo one cell of the grid (and the tables) with Snakemake")
    s.add_argument("row")
    s.add_argument("target")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--profile", action="append", help="Snakemake profile; given twice, the second overrides "
                   "the first's top-level keys (default: profiles/local)")
    s.add_argument("--configfile", nargs="+", type=Path, default=None,
                   help="the grid's config files (default: the profile's `configfile`, else config.yaml)")
    s.add_argument("--intermediate", action="store_true", help="redo the row's phase-(ii) training too")
    s.set_defaults(func=cmd_rerun, passes_unknown=True)  # other options go on to snakemake

    s = sub.add_parser("submit", help="submit cells as SLURM job arrays with submitit (requeued and resumed)")
    s.add_argument("cells", nargs="*", help="ROW:TARGET, e.g. mnli:xnli (default: every cell of the config)")
    s.add_argument("--seed", type=int, default=None, help="default: every seed of the config")
    s.add_argument("--configfile", nargs="+", type=Path, default=DEFAULT_CONFIG)
    s.add_argument("--profile", type=Path, default=Path("profiles/slurm"),
                   help="the cluster profile (partition, account, GPU model): a folder, or a name as for snakemake")
    s.add_argument("--directory", type=Path, default=None, help="the workflow's working directory")
    s.add_argument("--folder", type=Path, default=None, help="submitit's files (default: RESULTS/submitit)")
    s.set_defaults(func=cmd_submit)
    return p


def main(argv: list[str] | None = None, warm: bool = True) -> int:
    """The command line; a job command goes to the warm-start process when a local run has one (`warm`
    False: run here, as that process's children do)."""
    p = parser()
    args, unknown = p.parse_known_args(argv)
    if unknown and not getattr(args, "passes_unknown", False):
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.snakemake_args, args.argv = unknown, list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the jobs' own processes do the parallel work
    if warm and args.command in WARM_COMMANDS and not getattr(args, "show", False):
        from xstilts.warm import run

        if (code := run(args.argv)) is not None:
            return code
    if args.command in OFFLINE_COMMANDS:
        for switch, value in OFFLINE_ENV.items():
            os.environ.setdefault(switch, value)
    from xstilts.config import ConfigError
    from xstilts.errors import DataError, Preempted, TrainingError

    try:
        return args.func(args) or 0
    except Preempted as err:
        print(f"xstilts: {err}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except (ConfigError, DataError, TrainingError) as err:
        print(f"xstilts: error: {err}", file=sys.stderr)
        return 2
