"""Names of tasks, task pairs and PTMs, and the hyper-parameters a (model, task) gets.

The task order is fixed (docs/formats.md): it decides how a pair is written. A merged PTM is named
``{base}_{t1}_{t2}_{ratio}``; ``squad_v2`` contains an underscore, so names are parsed against the
known task list (:mod:`ptmbench.core.tasks`), never by splitting on ``_``; custom task names may not contain
one. Names of merged base models (config ``models``) may not contain ``_`` (the config schema enforces
it), which keeps every name unambiguous. Unseen models (config ``unseen_models``) are never merged, so
no name is ever parsed into an unseen base and a suffix: their names may contain ``_`` (the published
``flaubert_small_cased``), as long as no name has the shape of a merged name
(``..._{t1}_{t2}_{ratio}`` with two known tasks, :func:`merged_shape`; checked when the config is read),
so a merged name and an unseen name can never be equal, and a path of one can never match the other's
wildcard pattern.

    python -m ptmbench.cli.naming NAME [NAME ...] [--configfile config/config.yaml]

says whether NAME is a base model, PTM, task pair or task of the config (a NAME with a ``/`` is
checked as a target path, :func:`ptmbench.core.paths.target_problem`) and, if not, the nearest valid
names and the fixed task order. The Snakefile runs the same check on the targets it is asked for.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import re
from dataclasses import dataclass

from ptmbench.core import tasks as registry


def ordered(tasks) -> list[str]:
    """``tasks`` in the fixed task order (:func:`ptmbench.core.tasks.names`); unknown names raise ValueError."""
    known = registry.names()
    unknown = sorted(set(tasks) - set(known))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known tasks: {list(known)} (a custom task must be declared "
                         "under the config key 'custom_tasks')")
    return [t for t in known if t in set(tasks)]


def task_pairs(tasks=None) -> list[tuple[str, str]]:
    """Every unordered pair of ``tasks`` (default: every known task), t1 before t2 in the fixed order
    (45 for the 10 published tasks)."""
    return list(itertools.combinations(ordered(registry.names() if tasks is None else tasks), 2))


def pair_name(t1: str, t2: str) -> str:
    known = registry.names()
    if known.index(t1) >= known.index(t2):
        raise ValueError(f"pair ({t1}, {t2}) is not in task order; write it as ({t2}, {t1})")
    return f"{t1}_{t2}"


def parse_pair(pair: str) -> tuple[str, str]:
    for t1, t2 in task_pairs():
        if pair == f"{t1}_{t2}":
            return t1, t2
    raise ValueError(f"{pair!r} is not a task pair '{{t1}}_{{t2}}' of known tasks in order {list(registry.names())}")


def format_ratio(ratio) -> str:
    """0.5 -> '0.5', 1 -> '1.0': Python's shortest round-trip float text, as in the published names."""
    r = float(ratio)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"merge ratio {ratio!r} is outside [0, 1]")
    return repr(r)


# A merged PTM's name: its base model, its task pair ({t1}_{t2}, :func:`pair_name`) and its ratio
# (:func:`format_ratio`). The workflow's rules use it as the wildcard pattern of merged PTMs.
MERGED_NAME = "{base}_{pair}_{ratio}"


@dataclass(frozen=True)
class PTM:
    """A pre-trained model of the zoo: a base model, or a merge of two of its fine-tunes."""

    base: str
    t1: str | None = None
    t2: str | None = None
    ratio: str | None = None  # formatted, as in the name

    @property
    def is_merged(self) -> bool:
        return self.t1 is not None

    @property
    def pair(self) -> str | None:
        return pair_name(self.t1, self.t2) if self.is_merged else None

    @property
    def name(self) -> str:
        if not self.is_merged:
            return self.base
        return MERGED_NAME.format(base=self.base, pair=f"{self.t1}_{self.t2}", ratio=self.ratio)


def merged_name(base: str, t1: str, t2: str, ratio) -> str:
    pair_name(t1, t2)  # validates order
    return PTM(base, t1, t2, format_ratio(ratio)).name


_RATIO = r"(?:0|1)(?:\.\d+)?(?:e-?\d+)?"


def parse_ptm(name: str, bases) -> PTM:
    """Parse a PTM name: a base model in ``bases`` or ``{base}_{t1}_{t2}_{ratio}``."""
    bases = set(bases)
    if name in bases:
        return PTM(name)
    for base in sorted(bases, key=len, reverse=True):
        if not name.startswith(base + "_"):
            continue
        rest = name[len(base) + 1:]
        for t1, t2 in task_pairs():
            prefix = f"{t1}_{t2}_"
            if rest.startswith(prefix) and re.fullmatch(_RATIO, rest[len(prefix):]):
                ratio = rest[len(prefix):]
                return PTM(base, t1, t2, format_ratio(ratio))
    raise ValueError(
        f"{name!r} is neither a configured base model {sorted(bases)} "
        "nor a merged PTM '{base}_{t1}_{t2}_{ratio}' with tasks in the fixed order"
    )


def merged_shape(name: str) -> tuple[str, str, str] | None:
    """``(prefix, t1, t2)`` when ``name`` has the shape of a merged PTM name ``{prefix}_{t1}_{t2}_{ratio}``
    with two known tasks (in either order) and a ratio, else None. Unseen model names may contain ``_``
    but not this shape (:func:`unseen_name_problem`)."""
    for t1, t2 in itertools.permutations(registry.names(), 2):
        m = re.fullmatch(rf"(.+)_{re.escape(t1)}_{re.escape(t2)}_{_RATIO}", name)
        if m:
            return m.group(1), t1, t2
    return None


def unseen_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an unseen model's name, or None. It may contain ``_`` (unseen models are
    never merged, so their names are looked up whole, never split), but must not read as a merged PTM."""
    shape = merged_shape(name)
    if shape is None:
        return None
    prefix, t1, t2 = shape
    return (f"unseen model name {name!r} reads as a merged PTM name ({prefix!r} merged on {t1} and {t2}); "
            "rename it (an unseen model's name may contain '_', but not end in '_{t1}_{t2}_{ratio}' with "
            "two task names)")


def is_large(model: str) -> bool:
    """The published rule: models whose name contains 'large' get the smaller lr and batch."""
    return "large" in model


def hyperparameters(config: dict, model: str, task: str) -> dict:
    """The fine-tuning hyper-parameters of (base model, task), from the validated config.

    Order of precedence: ``precision`` from ``finetune.precision`` (auto when absent) and the task
    family's defaults (``finetune.glue`` or ``finetune.squad_v2``), then ``finetune.large.<family>``
    when the model name contains 'large', then the model's own ``finetune.<family>`` override; plus
    ``seed``: the primary seed (the first of ``finetune.seeds``; rule ``finetune_seed`` replaces it by
    an extra seed). Merged PTMs use their base's values. A plain mapping (a rule's ``params.hp``, what
    Snakemake compares between runs); the stages read it as
    :class:`ptmbench.core.finetune_params.FinetuneParams`.
    """
    family = registry.get(task).hp_family
    ft = config["finetune"]
    hp = {"precision": ft.get("precision", "auto"), **copy.deepcopy(ft[family])}
    if is_large(model):
        hp.update(ft.get("large", {}).get(family, {}))
    spec = config.get("models", {}).get(model) or config.get("unseen_models", {}).get(model) or {}
    hp.update(spec.get("finetune", {}).get(family, {}))
    hp["seed"] = ft["seeds"][0]
    return hp


# --------------------------------------------------------------------------------------------------
# Checking a name against a config: `python -m ptmbench.cli.naming NAME [--configfile F]`

KINDS: tuple[str, ...] = ("base", "ptm", "pair", "task")
_KIND_WORDS = {"base": "base model", "ptm": "PTM", "pair": "task pair", "task": "task"}


@dataclass(frozen=True)
class NameCheck:
    """What ``name`` is in a config (``kinds``, empty when nothing), or the nearest valid names."""

    name: str
    kinds: tuple[str, ...]
    asked: tuple[str, ...]  # the kinds it was checked as
    suggestions: tuple[str, ...] = ()
    wrong_order: str | None = None  # the same name with its two tasks in the fixed order
    order_note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.kinds)

    def message(self) -> str:
        if self.ok:
            return f"{self.name!r} is a valid " + " and ".join(_KIND_WORDS[k] for k in self.kinds) + " of this config"
        what = " / ".join(_KIND_WORDS[k] for k in self.asked)
        lines = [f"{self.name!r} is not a {what} of this config."]
        if self.wrong_order:
            lines.append(f"  Its two tasks are in the wrong order: write {self.wrong_order!r}.")
        others = [s for s in self.suggestions if s != self.wrong_order]
        if others:
            lines.append("  Nearest valid names: " + ", ".join(repr(s) for s in others))
        lines.append(self.order_note)
        return "\n".join(lines)


def order_note(zoo) -> str:
    """How pairs and merged PTM names are written, with the config's tasks, bases and ratios."""
    return (f"  A task pair is written {{t1}}_{{t2}} and a merged PTM {{base}}_{{t1}}_{{t2}}_{{ratio}}, with t1 "
            f"before t2 in the fixed task order {', '.join(registry.names())}.\n"
            f"  This config: tasks {', '.join(zoo.tasks)}; base models {', '.join(zoo.bases)} (merged: "
            f"{', '.join(zoo.models) or 'none'}); ratios {', '.join(zoo.ratios)}.")


def check_name(name: str, zoo, kinds=KINDS) -> NameCheck:
    """Is ``name`` one of ``kinds`` (of :data:`KINDS`) in ``zoo`` (a :class:`ptmbench.core.paths.Zoo`)?

    When not, the nearest valid names (difflib) and, for two tasks written in the wrong order,
    the name with the order fixed.
    """
    kinds = tuple(kinds)
    valid = {"base": zoo.bases, "ptm": zoo.ptms, "pair": zoo.pairs, "task": list(zoo.tasks)}
    found = tuple(k for k in kinds if name in valid[k])
    if found:
        return NameCheck(name, found, kinds)
    candidates = list(dict.fromkeys(n for k in kinds for n in valid[k]))
    wrapped, fixed = f"_{name}_", None
    for t1, t2 in task_pairs():
        if f"_{t2}_{t1}_" in wrapped:
            swapped = wrapped.replace(f"_{t2}_{t1}_", f"_{t1}_{t2}_", 1)[1:-1]
            if swapped in candidates:
                fixed = swapped
                break
    near = difflib.get_close_matches(name, candidates, n=4, cutoff=0.6)
    suggestions = tuple(dict.fromkeys([fixed, *near] if fixed else near))
    return NameCheck(name, (), kinds, suggestions, fixed, order_note(zoo))
