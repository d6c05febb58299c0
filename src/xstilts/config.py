"""The config, loaded one way by every entry point (the Snakefile, `xstilts status`, `xstilts submit`, Python).

`load_config` merges YAML files as Snakemake merges `--configfile`s, except that a mapping laid over a null
replaces it (Snakemake keeps the null; the Snakefile merges with this one); `resolve_config` checks the result against
`workflow/schemas/config.schema.yaml` (its settings `$defs` filled from the dataclasses of `xstilts.settings`)
and the task catalogue, then expands the path placeholders `{results}` and `{demo}`. A refusal is a
`ConfigError` of a few lines: the key or value, where it is, what is allowed, and a known name close to it.
No torch here: the Snakefile imports this module.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from xstilts.benchmarks import BENCHMARKS, configured_languages, configured_targets
from xstilts.catalogue import (
    BASELINE_ROW,
    DATASETS,
    HUB_REVISIONS,
    INTERMEDIATE_TASKS,
    MULTITASK_ROW,
    TARGETS,
    UNTRAINED_ROW,
    target_trainsets,
)
from xstilts.conditions import CONDITIONS, PERTURBATIONS, settings_of, switch_languages
from xstilts.devices import DEVICES
from xstilts.layout import Layout
from xstilts.lexicons import demo_pairs, file_name, pairs_in
from xstilts.settings import (
    OPTIMIZER_FIELDS,
    AlignmentSettings,
    Execution,
    HParams,
    JobSize,
    MLMSettings,
    PlanSettings,
    RetrievalSettings,
    RobustnessSettings,
    Sampling,
    SignificanceSettings,
    dataclass_schema,
    from_mapping,
)

if TYPE_CHECKING:  # jsonschema is imported when a config is checked, not by every command that imports this
    import jsonschema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")

Where = Sequence[str | int]  # a key or value's place in the config: its keys and list indices


class ConfigError(ValueError):
    """A config that the schema or the catalogue refuses; the message names the key or value, where it is and
    what is allowed. `path`: the keys (and list indices) of the refused key or value, () when none is."""

    def __init__(self, message: str, path: Where = ()) -> None:
        super().__init__(message)
        self.path = tuple(path)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` laid over `base` as Snakemake's `--configfile` does: nested mappings merged key by key, lists
    and scalars replaced (neither argument is changed)."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        both = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merge(out[key], value) if both else copy.deepcopy(value)
    return out


def load_config(configfiles: Sequence[Path | str], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config from YAML files merged in order, then `overrides` (as `snakemake --config`), resolved
    (`resolve_config`); a refusal names the file (or the overrides) a refused key or value came from."""
    config: dict[str, Any] = {}
    for file in configfiles:
        config = merge(config, _read(file))
    try:
        return resolve_config(merge(config, overrides or {}))
    except ConfigError as err:
        if overrides and err.path and _holds(overrides, err.path):
            raise _located(err, "the overrides") from None
        raise _located(err, _origin(err.path, configfiles)) from None


def resolve_config(config: Mapping[str, Any], files: Sequence[Path | str] = ()) -> dict[str, Any]:
    """A checked copy of a merged config, path placeholders expanded (`{results}`: the `results` folder,
    `{demo}`: the demo's generated world, `Layout.demo_world`; everywhere except in `results` itself).
    `files`: the YAML files it was merged from, in order, to name the one a refused key or value came from."""
    resolved = copy.deepcopy(dict(config))
    try:
        _check_schema(resolved)
        check_config(resolved)
        expanded = _expand(resolved)
        check_robustness(expanded)
        return expanded
    except ConfigError as err:
        raise _located(err, _origin(err.path, files)) from None


@cache
def config_schema() -> dict[str, Any]:
    """The config's JSON schema: the YAML file, its settings `$defs` filled from `xstilts.settings`, its task
    names and local sources from the catalogue."""
    schema = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    schema["$defs"].update(
        hparams=dataclass_schema(HParams), retrieval_settings=dataclass_schema(RetrievalSettings),
        sampling=dataclass_schema(Sampling), optimizer=dataclass_schema(HParams, only=OPTIMIZER_FIELDS),
        mlm=dataclass_schema(MLMSettings), job_size=dataclass_schema(JobSize),
        job_size_override=dataclass_schema(JobSize, partial=True), execution=dataclass_schema(Execution),
        plan=dataclass_schema(PlanSettings),
        robustness=_nullable(dataclass_schema(RobustnessSettings)),
        alignment=_nullable(dataclass_schema(AlignmentSettings)),
        significance=dataclass_schema(SignificanceSettings), condition={"enum": list(PERTURBATIONS)},
        target={"enum": list(TARGETS)}, trainset={"enum": target_trainsets(list(TARGETS))},
        benchmark={"enum": list(BENCHMARKS)})
    schema["$defs"]["plan"]["properties"]["device"]["enum"] = list(DEVICES)
    local = sorted({t.local_path_key for t in [*DATASETS.values(), *TARGETS.values()] if t.local_path_key}
                   | {key for t in TARGETS.values() for key in t.local_languages.values()})
    schema["properties"]["sources"]["properties"].update({key: {"$ref": "#/$defs/path"} for key in local})
    retrieval = [name for name, t in TARGETS.items() if t.family == "retrieval"]
    schema["properties"]["retrieval"]["properties"].update({t: {"$ref": "#/$defs/retrieval_settings"}
                                                             for t in retrieval})
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


@cache
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(config_schema())


# --------------------------------------------------------------------------------------------------
# Refusals


def _where(path: Where) -> str:
    """`training.defaults`, `targets[3]`; the top level: ''."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")


def _refusal(path: Where, problem: str, *, allowed: Sequence[Any] = (), word: Any = None,
             note: str = "", key: Where | None = None) -> ConfigError:
    """A refusal: `config WHERE: PROBLEM`, then what is allowed, a known name close to `word`, a note.
    `key`: the path of the refused key or value (default `path`), to find the file it came from."""
    lines = [f"config{' ' + _where(path) if path else ''}: {problem}"]
    if allowed:
        listed = ", ".join(map(str, allowed))
        lines.append(f"  allowed: {listed if len(listed) <= 300 else listed[:300] + '...'}")
    close = _close(str(word), [str(a) for a in allowed]) if word is not None else None
    if close:
        lines.append(f"  did you mean `{close}`?")
    if note:
        lines.append(f"  {note}")
    return ConfigError("\n".join(lines), path if key is None else key)


def _close(word: str, known: Sequence[str]) -> str | None:
    """The known name closest to a misspelt one, or the one its words abbreviate (learning_rate: lr)."""
    match = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if match:
        return match[0]
    initials = "".join(part[0] for part in word.split("_") if part)
    return initials if len(initials) > 1 and initials in known else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_WORDS = {"array": "a list", "object": "a mapping", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}
_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def _json_type(value: Any) -> str:
    for name, types in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float),
                        ("string", str), ("array", list), ("object", Mapping)):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _schema_refusal(error: jsonschema.ValidationError) -> ConfigError:
    """One schema error, phrased: the key or value, where, what is allowed, a close known name."""
    path, kind, value, schema = list(error.absolute_path), error.validator, error.instance, error.schema
    about = schema.get("description") if isinstance(schema, Mapping) else None
    note = f"{path[-1]}: {about}" if about and path and isinstance(path[-1], str) else ""
    if "propertyNames" in error.absolute_schema_path:  # a key of a mapping whose keys are constrained
        if kind == "enum":
            return _refusal(path, f"unknown key `{value}`", allowed=error.validator_value, word=value,
                            key=[*path, value])
        return _refusal(path, f"key {value!r} does not match {error.validator_value!r}", key=[*path, value])
    if kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        extra = [k for k in value if k not in known]
        return _refusal(path, f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(f'`{k}`' for k in extra)}",
                        allowed=known, word=extra[0], key=[*path, extra[0]])
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        about = schema.get("properties", {}).get(missing[0], {}).get("description")
        return _refusal(path, f"missing key{'s' if len(missing) > 1 else ''} {', '.join(f'`{k}`' for k in missing)}"
                              f" (required: {', '.join(error.validator_value)})",
                        note=f"{missing[0]}: {about}" if about and len(missing) == 1 else "")
    if kind == "enum":
        return _refusal(path, f"{_show(value)} is not allowed", allowed=error.validator_value,
                        word=value if isinstance(value, str) else None, note=note)
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        actual = _json_type(value)
        return _refusal(path, f"{_show(value)} is {_TYPE_WORDS.get(actual, 'a ' + actual)}, not {wanted}", note=note)
    if kind in _BOUNDS:
        return _refusal(path, f"{_show(value)} is out of range: must be {_BOUNDS[kind]} {error.validator_value}",
                        note=note)
    if kind == "pattern":
        return _refusal(path, f"{_show(value)} does not match {error.validator_value!r}", note=note)
    if kind == "minItems":
        return _refusal(path, f"{_show(value)} needs at least {error.validator_value} item(s)", note=note)
    if kind == "uniqueItems":
        return _refusal(path, f"{_show(value)} lists an item twice", note=note)
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return _refusal(path, message, note=note)


def _check_schema(config: Mapping[str, Any]) -> None:
    """The first schema error as a refusal (a missing key: all the keys missing there), with a count of the others."""
    from jsonschema.exceptions import best_match

    errors = list(_validator().iter_errors(config))
    if not errors:
        return
    first = best_match(errors)
    refusal = _schema_refusal(first)
    others = [e for e in errors if (e.absolute_path, e.validator) != (first.absolute_path, first.validator)]
    if others:
        more = f"{len(others)} more problem{'s' if len(others) > 1 else ''}"
        refusal = ConfigError(f"{refusal}\n  ({more} after this one)", refusal.path)
    raise refusal


def check_config(config: Mapping[str, Any]) -> None:
    """Checks the schema cannot express: rows, targets, languages, variants, training tasks and hub revisions
    against the catalogue."""
    variants = config.get("variants") or {}
    for name, variant in variants.items():
        if name in DATASETS or name in (BASELINE_ROW, MULTITASK_ROW, UNTRAINED_ROW):
            raise _refusal(["variants"], f"{name!r} is already a task or row name; choose another",
                           key=["variants", name])
        if variant["task"] not in INTERMEDIATE_TASKS:
            raise _refusal(["variants", name, "task"], f"unknown intermediate task {variant['task']!r}",
                           allowed=INTERMEDIATE_TASKS, word=variant["task"])
        if not (variant.get("mlm") or variant.get("translations")):
            raise _refusal(["variants", name], "give `mlm` or `translations` (or both)")
    known_rows = [BASELINE_ROW, *INTERMEDIATE_TASKS, MULTITASK_ROW, UNTRAINED_ROW, *variants]
    for i, row in enumerate(config["rows"]):
        if row not in known_rows:
            raise _refusal(["rows"], f"unknown row {row!r}", allowed=known_rows, word=row, key=["rows", i])
    if len(set(config["rows"])) != len(config["rows"]):
        raise _refusal(["rows"], f"a row is listed twice in {config['rows']}")
    for i, target in enumerate(config.get("targets") or []):
        if target not in TARGETS:
            raise _refusal(["targets"], f"unknown target {target!r}", allowed=list(TARGETS), word=target,
                           key=["targets", i])
    for target, languages in (config.get("languages") or {}).items():
        if target not in TARGETS:
            raise _refusal(["languages"], f"unknown target {target!r}", allowed=list(TARGETS), word=target,
                           key=["languages", target])
        allowed = TARGETS[target].languages
        for i, lang in enumerate(languages):
            if lang not in allowed:
                raise _refusal(["languages", target], f"unknown language {lang!r}",
                               note=f"{target} has: {' '.join(allowed)}", key=["languages", target, i])
    for task in (config.get("training") or {}).get("tasks") or {}:
        if task not in DATASETS:
            raise _refusal(["training", "tasks"], f"unknown task {task!r}", allowed=list(DATASETS), word=task,
                           key=["training", "tasks", task])
    for row in ((config.get("execution") or {}).get("rows") or {}):
        if row not in known_rows:
            raise _refusal(["execution", "rows"], f"unknown row {row!r}", allowed=known_rows, word=row,
                           key=["execution", "rows", row])
    _check_execution(config)
    _check_job_sizes(config)
    repos = [*HUB_REVISIONS, *(v["translations"]["source"] for v in variants.values() if v.get("translations"))]
    for repo in (config.get("sources") or {}).get("revisions") or {}:
        if repo not in repos:
            raise _refusal(["sources", "revisions"], f"{repo!r} is no hub repo this grid reads", allowed=repos,
                           word=repo, key=["sources", "revisions", repo])


def _check_execution(config: Mapping[str, Any]) -> None:
    """`attention: varlen` (torch's kernel has no attention dropout) only with dropout 0 in every training."""
    execution = config.get("execution") or {}
    entries = [(["execution", "defaults"], execution.get("defaults") or {}),
               *((["execution", "models", name], entry) for name, entry in (execution.get("models") or {}).items()),
               *((["execution", "rows", name], entry) for name, entry in (execution.get("rows") or {}).items())]
    training = config.get("training") or {}
    dropouts = [("training.defaults", (training.get("defaults") or {}).get("dropout", HParams.dropout)),
                *((f"training.tasks.{t}", hp["dropout"]) for t, hp in (training.get("tasks") or {}).items()
                  if "dropout" in hp),
                *(("multitask.optimizer", d) for d in [((config.get("multitask") or {}).get("optimizer") or {})
                                                       .get("dropout")] if d is not None)]
    for where, entry in entries:
        if entry.get("attention") == "varlen":
            for source, dropout in dropouts:
                if dropout:
                    raise _refusal([*where, "attention"], f"varlen attention has no attention dropout, but "
                                   f"{source} sets dropout {dropout}",
                                   note="set dropout: 0 there, or use flash_attention_2 (package flash-attn)")


def _check_job_sizes(config: Mapping[str, Any]) -> None:
    """Every job size of `resources` (a rule's default, overridden per task) is a valid `JobSize`; an evaluation
    is one process."""
    for rule, sizes in (config.get("resources") or {}).items():
        for task, override in [(None, {}), *((sizes.get("tasks") or {}).items())]:
            where = ["resources", rule, *(["tasks", task] if task else ["default"])]
            try:
                size = JobSize(**{**sizes["default"], **override})
            except ValueError as err:
                raise _refusal(where, str(err)) from None
            if rule == "evaluate" and size.processes > 1:
                raise _refusal(where, f"an evaluation runs one process, not {size.processes}",
                               note="evaluate: gpu 1 (or 0), nodes 1, tasks_per_node 1")


def _lexicon_pairs(config: Mapping[str, Any], folder: Path) -> tuple[set[tuple[str, str]], str]:
    """The lexicon pairs a run will find in `folder`, and where they come from: the demo's world writes its
    own (not there before its first job), any other folder has them on disk."""
    if config.get("demo") and folder == Layout(Path(config["results"])).demo_lexicons:
        languages = {lang for t in configured_targets(config) for lang in configured_languages(config, t)}
        return demo_pairs(languages), "the demo's world writes every pair of its languages"
    pairs = pairs_in(folder)
    return pairs, f"the folder has {len(pairs)} pair(s)"


def check_robustness(config: Mapping[str, Any]) -> None:
    """Checks of `robustness` and `alignment` against the grid (paths expanded): every listed target in the
    grid, every condition serving at least one of its targets' families, a lexicon for every language pair
    that `code_switch` or `adversarial` switches."""
    if config.get("alignment") is not None and not any(TARGETS[t].parallel for t in configured_targets(config)):
        parallel = [name for name, t in TARGETS.items() if t.parallel]
        raise _refusal(["alignment"], "no target of this grid has parallel data", allowed=parallel,
                       note="add one of them to `targets`, or set `alignment: null`")
    if config.get("robustness") is None:
        return
    settings = from_mapping(RobustnessSettings, config["robustness"])
    for i, target in enumerate(settings.targets or ()):
        if target not in configured_targets(config):
            raise _refusal(["robustness", "targets"], f"target {target!r} is not in this grid",
                           allowed=configured_targets(config), word=target, key=["robustness", "targets", i])
    targets = settings.targets or tuple(configured_targets(config))
    families = {t: TARGETS[t].family for t in targets}
    for i, name in enumerate(settings.conditions):
        condition = CONDITIONS[name]
        served = [t for t in targets if condition.serves_target(t)]
        if not served:
            raise _refusal(["robustness", "conditions"], f"{name} serves none of the targets it would perturb "
                           f"({', '.join(f'{t}: {families[t]}' for t in targets)})",
                           allowed=sorted(condition.families), key=["robustness", "conditions", i],
                           note=f"{name} keeps the labels of these families only")
        if condition.lexicon:
            _check_lexicons(config, name, settings_of(settings, name).languages, served)


def _check_lexicons(config: Mapping[str, Any], condition: str, configured: tuple[str, ...] | None,
                    targets: list[str]) -> None:
    """A lexicon file for every (language, switched-into language) pair a condition needs."""
    folder = (config.get("sources") or {}).get("lexicons")
    if not folder:
        raise _refusal(["robustness", "conditions"], f"{condition} needs bilingual lexicons: set `sources.lexicons` "
                       "(a folder of MUSE-format <src>-<tgt>.txt files)", key=["sources", "lexicons"])
    available, where = _lexicon_pairs(config, Path(folder))
    key = ["robustness", condition, "languages"] if configured else ["sources", "lexicons"]  # what to change
    for target in targets:
        languages = configured_languages(config, target)
        for language in languages:
            for into in switch_languages(language, configured, languages):
                if (language, into) not in available:
                    have = sorted(f"{a}-{b}" for a, b in available if a == language)
                    raise _refusal(["robustness", condition], f"no lexicon {file_name(language, into)} in {folder} "
                                   f"(sources.lexicons) for {target}'s {language}",
                                   note=f"{where}; {language} has: {' '.join(have) or 'none'}; `languages` sets the "
                                        "languages switched into", key=key)


# --------------------------------------------------------------------------------------------------
# Files and placeholders


def _read(file: Path | str) -> dict[str, Any]:
    """One YAML config file as a mapping."""
    try:
        loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"config file {file}: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {file}: not valid YAML{at}: {getattr(err, 'problem', err)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, Mapping):
        raise ConfigError(f"config file {file}: {_show(loaded)} is not a mapping of keys")
    return dict(loaded)


def _holds(node: Any, path: Where) -> bool:
    """Whether a config (or part of one) sets the key or value at `path`."""
    for key in path:
        if not ((isinstance(node, Mapping) and key in node)
                or (isinstance(node, list) and isinstance(key, int) and key < len(node))):
            return False
        node = node[key]
    return True


def _origin(path: Where, files: Sequence[Path | str]) -> str | None:
    """The last of the files that sets the key or value at `path` (the one the merge kept), if one does."""
    if not path:
        return None
    for file in reversed(files):
        try:
            if _holds(_read(file), path):
                return str(file)
        except ConfigError:
            continue
    return None


def _located(err: ConfigError, origin: str | None) -> ConfigError:
    """The refusal with where its key or value came from at the end of its first line."""
    if origin is None:
        return err
    first, *rest = str(err).split("\n")
    return ConfigError("\n".join([f"{first} (in {origin})", *rest]), err.path)


def _expand(config: dict[str, Any]) -> dict[str, Any]:
    """`{results}` and `{demo}` in every string value except `results` itself; an unknown placeholder refused."""
    results = str(config["results"])
    values = {"results": results, "demo": str(Layout(Path(results)).demo_world)}

    def expand(value: Any, path: list[str | int]) -> Any:
        if isinstance(value, str):
            for name in PLACEHOLDER.findall(value):
                if name not in values:
                    raise _refusal(path, f"unknown placeholder `{{{name}}}` in {value!r}",
                                   allowed=[f"{{{v}}}" for v in values], word=f"{{{name}}}")
            return PLACEHOLDER.sub(lambda m: values[m[1]], value)
        if isinstance(value, Mapping):
            return {k: expand(v, [*path, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v, [*path, i]) for i, v in enumerate(value)]
        return value

    return {k: v if k == "results" else expand(v, [k]) for k, v in config.items()}
