"""Load and validate a workflow config against config/schema.yaml, with one clear message.

The Snakefile calls :func:`validate` before any rule is defined; tests call it directly. Defaults
declared in the schema are filled in, so every consumer sees a complete config.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from ptmbench.core import naming
from ptmbench.core import tasks as registry

SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The config does not fit the schema; the message names the key and what is allowed."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and prop not in instance:
                    instance[prop] = sub["default"]
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _allowed(schema: dict) -> str:
    props = schema.get("properties")
    return f"; allowed keys: {sorted(props)}" if props else ""


def _message(err: jsonschema.ValidationError) -> str:
    key = _key(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        if err.schema.get("properties"):
            return f"config key '{key}' has unknown key(s) {extra}{_allowed(err.schema)}"
        return f"config key '{key}': {err.message}"
    if err.validator == "enum":
        return f"config key '{key}': {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "required":
        hint = ""
        if "source" in err.message:
            hint = "; every model needs a source: hub, path, package or tiny"
        return f"config key '{key}': {err.message}{hint}"
    if key.startswith("finetune.seeds") and err.validator in ("uniqueItems", "minItems"):
        return (f"config key 'finetune.seeds': {err.instance!r} must be a non-empty list of distinct "
                "integers (the first is the primary seed), e.g. [0] or [0, 1, 2]")
    if err.validator in ("minimum", "maximum") and "ratios" in key:
        return f"config key '{key}': merge ratio {err.instance!r} is outside [0, 1]"
    if err.validator == "pattern":
        return (f"config key '{key}': name {err.instance!r} must match {err.validator_value} "
                "(letters, digits, '.' and '-'; no '_' or '/')")
    return f"config key '{key}': {err.message}"


def load_schema(path: str | Path = SCHEMA) -> dict:
    return yaml.safe_load(Path(path).read_text())


def validate(config: dict, schema: str | Path | dict = SCHEMA) -> dict:
    """Check ``config`` in place (defaults filled); raise :class:`ConfigError` on the first problem."""
    schema = schema if isinstance(schema, dict) else load_schema(schema)
    _check_renamed(config)
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(cls(schema).iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.path)))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_message(err))
    overlap = sorted(set(config["models"]) & set(config.get("unseen_models", {})))
    if overlap:
        raise ConfigError(f"config keys 'models' and 'unseen_models' both name {overlap}; "
                          "a model is either merged or unseen, not both")
    _check_doc_stride(config)
    _check_tasks(config)
    _check_unseen(config)  # after the custom tasks are known: a name may not read as a merge of them
    _check_transferability(config)
    order = [*registry.PUBLISHED, *config.get("custom_tasks", {})]  # the fixed order of this config's tasks
    config["tasks"] = [t for t in order if t in set(config["tasks"])]
    return config


# Keys that were renamed: (section, old key, the fix)
RENAMED = (("finetune", "seed", "'finetune.seeds', a list whose first entry is the primary seed: "
            "write `seeds: [0]` instead of `seed: 0` (docs/finetune.md)"),)


def _check_renamed(config: dict) -> None:
    """An old config names a renamed key: say which key replaced it and how to write it."""
    for section, key, fix in RENAMED:
        if isinstance(config.get(section), dict) and key in config[section]:
            raise ConfigError(f"config key '{section}.{key}' was replaced by {fix}")


def _check_tasks(config: dict) -> None:
    """Custom tasks fit their kind and do not reuse a published name; every listed task is known. (The
    registry learns this config's custom tasks only when asked: :func:`ptmbench.core.tasks.configure`.)"""
    custom = config.get("custom_tasks", {})
    for name, spec in custom.items():
        problem = registry.custom_problem(name, spec)
        if problem:
            raise ConfigError(f"config key '{problem[0]}': {problem[1]}")
    for i, task in enumerate(config["tasks"]):
        if task not in registry.PUBLISHED and task not in custom:
            raise ConfigError(f"config key 'tasks[{i}]': {task!r} is neither a published task "
                              f"{list(registry.PUBLISHED)} nor declared under 'custom_tasks' "
                              f"(declared: {list(custom) or 'none'})")


def _check_transferability(config: dict) -> None:
    """The ``transferability`` block against the estimator registry (:data:`ptmbench.estimators.transferability.ESTIMATORS`
    and its parameter defaults), which the schema's lists copy; and the limits the schema cannot state:
    a subsample must be large enough for its estimator (kNN needs k + 1 examples, a linear probe one
    per fold, NLEEP's mixture one per component of at least two classes)."""
    block = config.get("transferability")
    if block is None:
        return
    # scipy (the estimators' maths) stays out of the Snakefile's parse unless the block is given
    from ptmbench.estimators import transferability as tr

    for i, name in enumerate(block.get("estimators", [])):
        if name not in tr.ESTIMATORS:
            raise ConfigError(f"config key 'transferability.estimators[{i}]': {name!r} is not allowed; "
                              f"allowed values: {list(tr.ESTIMATORS)}")
    for name, params in block.items():
        if name in ("estimators", "sweep"):  # the sweep's keys: the schema
            continue
        if name not in tr.DEFAULTS:
            raise ConfigError(f"config key 'transferability' has unknown key {name!r}; allowed keys: "
                              f"{['estimators', 'sweep', *(n for n in tr.DEFAULTS if tr.DEFAULTS[n])]}")
        unknown = sorted(set(params) - set(tr.DEFAULTS[name]))
        if unknown:
            raise ConfigError(f"config key 'transferability.{name}' has unknown key(s) {unknown}; "
                              f"allowed keys: {sorted(tr.DEFAULTS[name])}")

    def get(name, key):
        return block.get(name, {}).get(key, tr.DEFAULTS[name][key])

    needs = (("knn", "k", lambda k: k + 1, "k + 1 (each example's k neighbours and itself)"),
             ("linear_probe", "folds", lambda f: f, "one per fold"),
             ("nleep", "components_per_class", lambda c: 2 * c,
              "one per mixture component: components_per_class x 2 classes at least"))
    for name, key, least, why in needs:
        cap, value = get(name, "max_examples"), get(name, key)
        if cap is not None and cap < least(value):
            raise ConfigError(f"config key 'transferability.{name}.max_examples': {cap} examples are too few "
                              f"for {name}.{key} = {value}: it needs at least {least(value)}, {why}; "
                              "raise max_examples (null: every example) or lower "
                              f"transferability.{name}.{key}")


def _check_unseen(config: dict) -> None:
    """Unseen names may contain ``_`` but never read as a merged PTM name (:func:`naming.unseen_name_problem`);
    ``export_name`` only in ``unseen_models``, and every unseen model exported under a name of its own."""
    for model, spec in config["models"].items():
        if "export_name" in spec:
            raise ConfigError(f"models.{model}.export_name: only an unseen model (config key unseen_models) may be "
                              "exported under another name; a merged base model is exported under its own")
    exported: dict[str, str] = {}
    for model, spec in config.get("unseen_models", {}).items():
        problem = naming.unseen_name_problem(model)
        if problem:
            raise ConfigError(f"unseen_models.{model}: {problem}")
        name = spec.get("export_name", model)
        if name != model and name in config["unseen_models"]:
            raise ConfigError(f"unseen_models.{model}.export_name {name!r} is the name of another unseen model; "
                              "two unseen models cannot be exported under one name")
        if name in exported:
            raise ConfigError(f"unseen_models {exported[name]!r} and {model!r} are both exported as {name!r}; "
                              "give one of them another export_name")
        exported[name] = model


def _check_doc_stride(config: dict) -> None:
    """SQuAD v2 windows overlap by ``doc_stride`` tokens, so it must be below ``max_length`` for every
    model (after the ``finetune.large`` and per-model overrides; :func:`naming.hyperparameters`)."""
    ft = config["finetune"]
    layers = [("finetune.squad_v2", ft["squad_v2"])]
    if ft["squad_v2"]["doc_stride"] >= ft["squad_v2"]["max_length"]:
        _stride_error(layers, "")
    for section in ("models", "unseen_models"):
        for model, spec in config.get(section, {}).items():
            hp = naming.hyperparameters(config, model, "squad_v2")
            if hp["doc_stride"] < hp["max_length"]:
                continue
            here = list(layers)
            if naming.is_large(model):
                here.append(("finetune.large.squad_v2", ft.get("large", {}).get("squad_v2", {})))
            own = spec.get("finetune", {}).get("squad_v2", {})
            here.append((f"{section}.{model}.finetune.squad_v2", own))
            _stride_error(here, f" for model {model!r}")


def _stride_error(layers, who: str) -> None:
    def origin(key):  # the most specific config key that sets ``key``
        return next(name for name, layer in reversed(layers) if key in layer)

    ds, ml = (next(layer[k] for _, layer in reversed(layers) if k in layer)
              for k in ("doc_stride", "max_length"))
    raise ConfigError(
        f"config key '{origin('doc_stride')}.doc_stride': doc_stride {ds} must be smaller than max_length "
        f"{ml} (from '{origin('max_length')}.max_length'){who}: SQuAD v2 windows of max_length tokens "
        "overlap by doc_stride tokens (e.g. max_length 384, doc_stride 128)")


def load(path: str | Path) -> dict:
    """Read a YAML config file and validate it."""
    return validate(yaml.safe_load(Path(path).read_text()))
