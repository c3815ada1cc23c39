"""Load and validate a workflow config against config/schema.yaml, with one clear message.

The Snakefile calls :func:`validate` before any rule is defined; tests call it directly. Defaults
declared in the schema are filled in, so every consumer sees a complete config.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from ptmbench import naming

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


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
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(cls(schema).iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.path)))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_message(err))
    overlap = sorted(set(config["models"]) & set(config.get("unseen_models", {})))
    if overlap:
        raise ConfigError(f"config keys 'models' and 'unseen_models' both name {overlap}; "
                          "a model is either merged or unseen, not both")
    config["tasks"] = naming.ordered(config["tasks"])
    return config


def load(path: str | Path) -> dict:
    """Read a YAML config file and validate it."""
    return validate(yaml.safe_load(Path(path).read_text()))
