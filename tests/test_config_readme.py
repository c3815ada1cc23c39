"""config/README.md (the configuration page the Snakemake workflow catalog shows) documents every key
and every allowed value of config/schema.yaml, and its example configuration is valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ptmbench.settings import config as cfgmod

CONFIG = Path(__file__).resolve().parents[1] / "config"
README = (CONFIG / "README.md").read_text()


def _resolve(schema, ref):
    node = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _walk(node, schema, path=()):
    """Yield (dotted key, schema) for every property in the schema, following $ref."""
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        yield path and ".".join(path), _resolve(schema, node["$ref"])
        yield from _walk(_resolve(schema, node["$ref"]), schema, path)
    for name, sub in node.get("properties", {}).items():
        yield ".".join((*path, name)), sub
        yield from _walk(sub, schema, (*path, name))
    if isinstance(node.get("additionalProperties"), dict):  # models: name -> model entry
        yield from _walk(node["additionalProperties"], schema, path)


def _schema_keys():
    schema = cfgmod.load_schema()
    return [(k, sub) for k, sub in _walk(schema, schema) if k]


def _documented(key: str) -> bool:
    last = re.escape(key.split(".")[-1])
    return re.search(rf"`([\w.]+\.)?{last}`", README) is not None


def test_every_schema_key_is_documented():
    missing = sorted({k for k, _ in _schema_keys() if not _documented(k)})
    assert not missing, f"config/README.md does not document {missing}"


def test_every_allowed_value_is_documented():
    def enums(node):
        if isinstance(node, dict):
            yield from node.get("enum", [])
            for sub in node.values():
                yield from enums(sub)
        elif isinstance(node, list):  # anyOf / allOf
            for sub in node:
                yield from enums(sub)

    values = {str(v) for v in enums(cfgmod.load_schema())}
    assert {"cola", "squad_v2", "hub", "tiny", "ties", "cosine", "xlm-roberta"} <= values
    missing = sorted(v for v in values if f"`{v}`" not in README)
    assert not missing, f"config/README.md does not list the allowed values {missing}"


def test_the_example_configuration_is_valid():
    blocks = re.findall(r"```yaml\n(.*?)```", README, re.S)
    assert blocks, "config/README.md has no example configuration"
    for block in blocks:
        cfg = cfgmod.validate(yaml.safe_load(block))
        assert cfg["models"] and cfg["tasks"]
