"""The GLUE / SQuAD v2 schemas and the embedded demo data, generated offline and deterministically.

:func:`features` builds the Hugging Face ``nyu-mll/glue`` schema of the 9 GLUE tasks (column names and
order, ``ClassLabel`` names, ``idx`` int32, stsb float32) from their entries in :mod:`ptmbench.core.tasks`,
and the same schema for the custom GLUE-style tasks a config declares; the entry's ``splits`` are
their split names. Every GLUE-style source (hub, path, demo, custom files) is cast to them.

The demo generator writes, per task, small datasets that a pretrained encoder can learn and that
differ from task to task (own vocabulary, own templates, own decision rule), so fine-tuned and
merged models and LogME have something to rank:

- cola   grammatical sentences vs the same words with a broken word order
- sst2   film reviews, label = sentiment of the evaluative words
- mrpc   company news pairs: a synonym paraphrase (equivalent) vs two changes among company,
         metric, figure and direction (not_equivalent)
- qqp    how-to question pairs: the same goal asked differently (duplicate) vs another goal
- stsb   scene descriptions sharing k of 5 content slots, label = 5 k / 5 (+ small noise)
- mnli   premise about a person's action; hypothesis is a generalisation (entailment), adds a
         reason (neutral) or negates it (contradiction); mismatched splits use another genre
- qnli   question about an object's attribute; sentence answers it (entailment) or describes
         another attribute or object (not_entailment)
- rte    two-clause event report; hypothesis restates one clause (entailment) or swaps the roles
         of agent and patient / changes the year (not_entailment)
- wnli   "the A did not fit in the B because it was too big/small"; hypothesis resolves "it"
- squad_v2 biographies of invented people, questions on birthplace, year, job, employer, pet;
         unanswerable questions ask about an attribute the paragraph does not state

Generation is a pure function of (task, seed, sizes); a few percent of labels are flipped so the
tasks are learnable but not trivial.
"""

from __future__ import annotations

import logging
import random
import string

import datasets

from ptmbench.core import tasks as registry

log = logging.getLogger("ptmbench.data.schemas")

# --------------------------------------------------------------------------------------------------
# GLUE schema (nyu-mll/glue on the Hugging Face Hub)

_I32 = datasets.Value("int32")
_STR = datasets.Value("string")


def _cls(*names):
    return datasets.ClassLabel(names=list(names))


def features(task: str) -> datasets.Features:
    """The ``datasets`` schema of GLUE-style ``task`` (a published GLUE task: exactly ``nyu-mll/glue``'s):
    its text columns (strings), ``label`` (``ClassLabel`` of its class names; float32 scores for
    regression) and ``idx`` (int32)."""
    entry = registry.get(task)
    if entry.kind == "qa":
        raise ValueError(f"task {task!r} is extractive QA (SQuAD v2 JSON), not a GLUE-style dataset")
    return datasets.Features({
        **{c: _STR for c in entry.text},
        "label": datasets.Value("float32") if entry.labels is None else _cls(*entry.labels),
        "idx": _I32,
    })


def is_test_split(split: str) -> bool:
    """GLUE test splits are unlabelled (label -1) and may be empty; train/validation splits may not."""
    return split.startswith("test")


def label_problem(task: str, split: str, label) -> str | None:
    """Why ``label`` (a ``ClassLabel`` id, or an STS-B score) is not a valid label of ``task`` in ``split``,
    or None when it is. Test splits also accept -1 (unlabelled)."""
    entry = registry.get(task)
    names = entry.labels
    if is_test_split(split) and label == -1:
        return None
    if names is None:
        try:
            x = float(label)
        except (TypeError, ValueError):
            return f"score {label!r} is not a number"
        if x != x or x in (float("inf"), float("-inf")):
            return f"score {label!r} is not finite"
        if entry.score_range and not entry.score_range[0] <= x <= entry.score_range[1]:
            lo, hi = entry.score_range
            return f"score {label!r} is outside [{lo:g}, {hi:g}]"
        return None
    if isinstance(label, bool) or not isinstance(label, int | float) or label != int(label) \
            or not 0 <= label < len(names):
        return f"label {label!r} is not one of {list(names)} (ids 0..{len(names) - 1})"
    return None


def first_bad_label(task: str, split: str, labels) -> tuple[int, str] | None:
    """(position, :func:`label_problem`) of the first invalid entry of the array ``labels``, or None.
    Vectorised: fast on the 400k-row GLUE splits."""
    import numpy as np

    labels = np.asarray(labels)
    entry = registry.get(task)
    if entry.labels is None:
        lo, hi = entry.score_range or (-np.inf, np.inf)
        ok = np.isfinite(labels) & (labels >= lo) & (labels <= hi)
    else:
        ok = (labels >= 0) & (labels < len(entry.labels)) & (labels == np.round(labels))
    if is_test_split(split):
        ok |= labels == -1
    if ok.all():
        return None
    i = int(np.argmin(ok))
    value = float(str(labels[i])) if labels.dtype.kind == "f" else labels[i].item()  # 7.2, not 7.19999
    return i, label_problem(task, split, value) or f"label {value!r} is not valid"


def validate_glue(task: str, dd, where) -> None:
    """Refuse GLUE ``task`` data that would train or score wrongly; every source goes through here.

    ``dd``: a DatasetDict in the :func:`features` schema. ``where``: the source (a string, or one
    per split, e.g. the TSV file). Train and validation splits must have rows, test splits may be empty;
    text must be present (``None`` is refused; an empty string is kept: the tokenizer encodes it as
    special tokens only); labels must pass :func:`label_problem`. The error names the source, split,
    data row (1-based), ``idx`` and value, and how to fix it.
    """
    import numpy as np
    import pyarrow.compute as pc

    fix = "fix the source data (or point the config at a good copy) and re-run; nothing was written"
    entry = registry.get(task)
    for split in entry.splits:
        ds = dd[split]
        src = where.get(split, "") if isinstance(where, dict) else where
        head = f"{'custom task' if entry.custom else 'GLUE'} {task} {src}".rstrip() + f", split {split}"
        if len(ds) == 0:
            if is_test_split(split):
                continue
            raise ValueError(f"{head}: no data rows (only a header, or an empty file); a {split} split needs "
                             f"examples: {fix}")
        table = ds.data
        for col in entry.text:
            nulls = table.column(col).is_null().to_numpy(zero_copy_only=False)
            if nulls.any():
                i = int(np.argmax(nulls))
                raise ValueError(f"{head}, data row {i + 1} (idx {ds[i]['idx']}): column {col!r} has no text "
                                 f"(None); {fix}")
            blank = pc.equal(pc.utf8_trim_whitespace(table.column(col)), "").to_numpy(zero_copy_only=False)
            if blank.any():
                i = int(np.argmax(blank))
                log.warning("%s: %d row(s) with empty %r text (first: data row %d, idx %s); kept, the "
                            "tokenizer encodes them as special tokens only", head, int(blank.sum()), col,
                            i + 1, ds[i]["idx"])
        bad = first_bad_label(task, split, table.column("label").to_numpy(zero_copy_only=False))
        if bad:
            i, problem = bad
            raise ValueError(f"{head}, data row {i + 1} (idx {ds[i]['idx']}): {problem}; {fix}")


# --------------------------------------------------------------------------------------------------
# Lexicon of the demo data (also the corpus the tiny models' tokenizers are trained on)

LEXICON: dict[str, tuple[str, ...]] = {
    # cola: simple transitive clauses
    "cola_subj": ("the farmer", "a teacher", "the children", "my neighbour", "the old sailor",
                  "a young doctor", "the baker", "our captain", "the students", "a painter",
                  "the gardener", "her brother"),
    "cola_verb": ("planted", "carried", "painted", "repaired", "washed", "borrowed", "opened",
                  "built", "cleaned", "found", "sold", "moved"),
    "cola_obj": ("the fence", "a wooden boat", "the red door", "several chairs", "the tractor",
                 "a small table", "the windows", "an old bicycle", "the roof", "a basket",
                 "the garden gate", "the lamps"),
    "cola_adv": ("yesterday", "last week", "on monday", "before dinner", "in the morning",
                 "after the storm", "quickly", "carefully", "again", "at noon"),
    # sst2: film reviews
    "sst_noun": ("film", "movie", "story", "plot", "script", "performance", "soundtrack",
                 "direction", "ending", "cast", "dialogue", "cinematography"),
    "sst_pos": ("wonderful", "brilliant", "moving", "delightful", "gripping", "charming",
                "superb", "heartfelt", "stunning", "hilarious", "masterful", "uplifting"),
    "sst_neg": ("boring", "dreadful", "clumsy", "tedious", "shallow", "awful", "lifeless",
                "confusing", "bland", "painful", "forgettable", "sloppy"),
    "sst_frame": ("the {n} is {a}", "a {a} {n}", "what a {a} {n}", "i found the {n} {a}",
                  "the {n} feels {a} from start to finish", "frankly , the {n} was {a}",
                  "an utterly {a} {n}", "the {n} turned out {a}"),
    # mrpc: company news
    "mrpc_company": ("northwind", "acme corp", "globex", "initech", "umbrella group", "stark industries",
                     "wayne holdings", "cyberdyne", "tyrell systems", "soylent inc", "hooli",
                     "vandelay imports"),
    "mrpc_metric": ("revenue", "profit", "sales", "its share price", "quarterly earnings",
                    "operating income", "exports", "its workforce"),
    "mrpc_up": ("rose", "increased", "climbed", "grew", "went up", "jumped"),
    "mrpc_down": ("fell", "decreased", "dropped", "declined", "went down", "slipped"),
    "mrpc_when": ("in march", "in the second quarter", "last year", "in april", "during the autumn",
                  "in the first half"),
    "mrpc_said": ("said", "announced", "reported", "stated", "disclosed", "confirmed"),
    # qqp: how-to questions
    "qqp_goal": ("learn to swim", "bake bread", "lose weight", "fix a flat tyre", "learn python",
                 "train a puppy", "grow tomatoes", "save money", "write a novel", "play the guitar",
                 "speak french", "start a business", "sleep better", "run a marathon"),
    "qqp_frame": ("how do i {g} ?", "what is the best way to {g} ?", "how can i {g} quickly ?",
                  "what should i do to {g} ?", "how does one {g} ?", "any tips to {g} ?",
                  "what are good ways to {g} ?", "how can someone {g} ?"),
    # stsb: scenes
    "sts_subj": ("a man", "a woman", "a boy", "a girl", "an old man", "a dog", "a cat", "two kids",
                 "a chef", "a musician"),
    "sts_verb": ("is playing", "is eating", "is holding", "is throwing", "is cutting", "is watching",
                 "is carrying", "is slicing"),
    "sts_obj": ("a guitar", "an apple", "a ball", "a piano", "a tomato", "a newspaper", "a kite",
                "a violin", "an onion", "a frisbee"),
    "sts_place": ("in the park", "on the beach", "in a kitchen", "on a stage", "in the street",
                  "by the river", "in a garden", "on a bus"),
    "sts_manner": ("slowly", "happily", "in the rain", "at night", "with a friend", "alone",
                   "on a sunny day", "in silence"),
    # mnli: matched genre (everyday fiction) and mismatched genre (government / travel)
    "mnli_m_person": ("anna", "the detective", "my uncle", "the waitress", "tom", "the nurse",
                      "the pilot", "sarah", "the mayor", "the clerk"),
    "mnli_m_action": ("read the letter", "locked the door", "cooked the soup", "fed the horses",
                      "answered the phone", "signed the contract", "painted the kitchen",
                      "caught the train", "mended the coat", "counted the money"),
    "mnli_m_place": ("at home", "in the office", "at the station", "in the village", "at the hotel",
                     "in the hospital"),
    "mnli_mm_person": ("the agency", "the committee", "the tourists", "the ministry", "the guide",
                       "the council", "the inspectors", "the travellers"),
    "mnli_mm_action": ("approved the budget", "visited the temple", "published the report",
                       "booked the ferry", "reviewed the policy", "crossed the border",
                       "funded the program", "explored the ruins"),
    "mnli_mm_place": ("in the capital", "on the island", "in the province", "near the coast",
                      "in the old town", "at the ministry"),
    "mnli_reason": ("because it was urgent", "because a friend asked", "to impress everyone",
                    "for the first time", "because of the deadline", "after a long argument"),
    # qnli: objects and attributes
    "qnli_object": ("the bridge", "the castle", "the lighthouse", "the cathedral", "the stadium",
                    "the museum", "the tower", "the library", "the harbour", "the palace"),
    "qnli_attr": (("built", "when was {o} built ?", "{o} was built in {v} .",
                   ("1850", "1901", "1776", "1923", "1688", "1999")),
                  ("designed", "who designed {o} ?", "{o} was designed by {v} .",
                   ("gustave rossi", "maria lind", "henry walsh", "olga petrov", "ian moretti")),
                  ("tall", "how tall is {o} ?", "{o} is {v} tall .",
                   ("forty metres", "ninety metres", "twelve metres", "sixty feet")),
                  ("colour", "what colour is {o} ?", "{o} is painted {v} .",
                   ("white", "green", "grey", "yellow", "blue")),
                  ("visitors", "how many visitors does {o} get ?", "{o} gets {v} visitors a year .",
                   ("two million", "ten thousand", "half a million", "eighty thousand"))),
    # rte: events with agent, patient, year
    "rte_org": ("the bank of arden", "brightline", "the royal mint", "harbor energy", "the state railway",
                "orion pharma", "the city council", "mercer logistics", "the national museum",
                "delta mining"),
    "rte_event": ("acquired", "sued", "merged with", "signed a deal with", "hired the chief of",
                  "bought a stake in"),
    "rte_year": ("1998", "2003", "2007", "2011", "2015", "2019"),
    "rte_city": ("lisbon", "oslo", "nairobi", "lima", "osaka", "dublin", "cairo", "quebec"),
    # wnli: fit-in schemas
    "wnli_pairs": (("trophy", "suitcase"), ("piano", "doorway"), ("sofa", "van"), ("book", "drawer"),
                   ("cake", "box"), ("statue", "crate"), ("ladder", "shed"), ("quilt", "basket"),
                   ("painting", "frame"), ("tree", "pot")),
    "wnli_frame": ("the {a} did not fit in the {b} because it was too {adj} .",
                   "they could not put the {a} into the {b} because it was too {adj} .",
                   "the {a} would not go in the {b} , it was too {adj} ."),
    # squad_v2: biographies
    "sq_first": ("amara", "boris", "chen", "dalia", "emil", "farah", "gustav", "hana", "ivo", "jolene",
                 "kofi", "lena", "mateo", "nadia", "oskar", "priya", "quentin", "rosa", "sven", "talia"),
    "sq_last": ("okafor", "lindqvist", "moreau", "tanaka", "novak", "haddad", "brennan", "costa",
                "ferreira", "kowalski", "nguyen", "schmidt"),
    "sq_city": ("valparaiso", "tromso", "marrakesh", "tbilisi", "hobart", "cork", "kyoto", "bergen",
                "porto", "leipzig", "quito", "adelaide"),
    "sq_job": ("architect", "violinist", "chemist", "journalist", "carpenter", "surgeon",
               "astronomer", "librarian", "pilot", "engineer"),
    "sq_org": ("the northern observatory", "the city orchestra", "a shipping firm", "the central hospital",
               "a small newspaper", "the geology institute", "a furniture workshop", "the national archive"),
    "sq_pet": ("a grey parrot", "a black cat", "an old sheepdog", "a tortoise", "two goldfish",
               "a white rabbit"),
}


def corpus() -> list[str]:
    """Text the tiny models' tokenizers are trained on: every lexicon entry, plus an alphabet line.

    Deterministic and independent of any seed, so a tiny model's tokenizer depends only on its family.
    """
    lines: list[str] = []

    def walk(obj):
        if isinstance(obj, str):
            lines.append(obj.replace("{", "").replace("}", ""))
        else:
            for x in obj:
                walk(x)

    for key in sorted(LEXICON):
        walk(LEXICON[key])
    lines += ["too big", "too small", "not never did what who where when how many", "years old",
              "was born in", "works as a", "at", "has", "lives with", "the question answer",
              "the year of birth", "is", "was", "?", ".", ",", "'s"]
    lines.append(" ".join(string.ascii_letters + string.digits + string.punctuation))
    return lines


# --------------------------------------------------------------------------------------------------
# GLUE demo generator

NOISE = 0.05  # fraction of classification labels flipped (GLUE has label noise too)


def _pick(rng: random.Random, key: str):
    return rng.choice(LEXICON[key])


def _other(rng: random.Random, key: str, not_this):
    return rng.choice([x for x in LEXICON[key] if x != not_this])


def _cola(rng, label, variant):
    subj, verb, obj, adv = (_pick(rng, k) for k in ("cola_subj", "cola_verb", "cola_obj", "cola_adv"))
    lead = rng.choice(("", "", "i think ", "everyone knows "))
    if label == 1:
        words = [subj, verb, obj, adv] if rng.random() < 0.7 else [adv, subj, verb, obj]
        return {"sentence": f"{lead}{' '.join(words)} ."}
    kind = rng.randrange(3)
    if kind == 0:  # verb after its object
        words = [subj, obj, verb, adv]
    elif kind == 1:  # no verb
        words = [subj, obj, adv]
    else:  # scrambled word order
        words = " ".join([subj, verb, obj, adv]).split()
        original = list(words)
        while words == original:
            rng.shuffle(words)
    return {"sentence": f"{lead}{' '.join(words)} ."}


def _sst2(rng, label, variant):
    pol, opp = ("sst_pos", "sst_neg") if label == 1 else ("sst_neg", "sst_pos")
    noun, adj = _pick(rng, "sst_noun"), _pick(rng, pol)
    text = rng.choice(LEXICON["sst_frame"]).format(n=noun, a=adj)
    r = rng.random()
    if r < 0.25:  # a concession of the other polarity; the main clause decides
        text = f"although the {_other(rng, 'sst_noun', noun)} is {_pick(rng, opp)} , {text}"
    elif r < 0.5:
        text = f"{text} and the {_other(rng, 'sst_noun', noun)} is {_pick(rng, pol)}"
    return {"sentence": f"{text} ."}


def _mrpc(rng, label, variant):
    co, metric, when = _pick(rng, "mrpc_company"), _pick(rng, "mrpc_metric"), _pick(rng, "mrpc_when")
    up = rng.random() < 0.5
    num = rng.choice((3, 5, 8, 10, 12, 15, 20, 25, 30, 40))
    direction = "mrpc_up" if up else "mrpc_down"
    s1 = f"{co} {_pick(rng, 'mrpc_said')} that {metric} {_pick(rng, direction)} by {num} percent {when} ."
    co2, metric2, num2, direction2 = co, metric, num, direction
    if label == 0:  # two of company, metric, figure and direction change
        for change in rng.sample(range(4), 2):
            if change == 0:
                co2 = _other(rng, "mrpc_company", co)
            elif change == 1:
                metric2 = _other(rng, "mrpc_metric", metric)
            elif change == 2:
                num2 = rng.choice([n for n in (3, 5, 8, 10, 12, 15, 20, 25, 30, 40) if n != num])
            else:
                direction2 = "mrpc_down" if up else "mrpc_up"
    if rng.random() < 0.5:
        s2 = f"{when} , {metric2} at {co2} {_pick(rng, direction2)} {num2} percent , the company {_pick(rng, 'mrpc_said')} ."
    else:
        s2 = f"according to {co2} , {metric2} {_pick(rng, direction2)} {num2} percent {when} ."
    return {"sentence1": s1, "sentence2": s2}


def _qqp(rng, label, variant):
    goal = _pick(rng, "qqp_goal")
    f1, f2 = rng.sample(LEXICON["qqp_frame"], 2)
    goal2 = goal if label == 1 else _other(rng, "qqp_goal", goal)
    if label == 0 and rng.random() < 0.3:
        f2 = f1  # same wording, other goal
    return {"question1": f1.format(g=goal), "question2": f2.format(g=goal2)}


_STS_SLOTS = ("sts_subj", "sts_verb", "sts_obj", "sts_place", "sts_manner")


def _stsb(rng, label, variant):
    a = [_pick(rng, k) for k in _STS_SLOTS]
    shared = set(rng.sample(range(len(_STS_SLOTS)), label))
    b = [a[i] if i in shared else _other(rng, k, a[i]) for i, k in enumerate(_STS_SLOTS)]
    return {"sentence1": " ".join(a) + " .", "sentence2": " ".join(b) + " ."}


def _mnli(rng, label, variant):
    g = "mnli_m" if variant == "matched" else "mnli_mm"
    who, act, where = _pick(rng, f"{g}_person"), _pick(rng, f"{g}_action"), _pick(rng, f"{g}_place")
    premise = f"{who} {act} {where} {rng.choice(('yesterday', 'last night', 'this morning', 'on friday'))} ."
    if label == 0:  # entailment: a generalisation of the premise
        hyp = rng.choice((f"{who} {act} .", f"someone {act} {where} .", f"{who} was {where} ."))
    elif label == 1:  # neutral: adds what the premise does not say
        reason = _pick(rng, "mnli_reason")
        hyp = rng.choice((f"{who} {act} {reason} .", f"{who} {act} {where} {reason} ."))
    else:  # contradiction
        hyp = rng.choice((f"{who} never {act} .", f"nobody {act} {where} .",
                          f"{who} was not {where} that day ."))
    return {"premise": premise, "hypothesis": hyp}


def _qnli(rng, label, variant):
    obj = _pick(rng, "qnli_object")
    attrs = LEXICON["qnli_attr"]
    att = rng.choice(attrs)
    question = att[1].format(o=obj)
    if label == 0:
        s_att, s_obj = att, obj
    elif rng.random() < 0.5:
        s_att, s_obj = rng.choice([a for a in attrs if a is not att]), obj
    else:
        s_att, s_obj = att, _other(rng, "qnli_object", obj)
    sentence = s_att[2].format(o=s_obj, v=rng.choice(s_att[3]))
    if rng.random() < 0.4:
        sentence = rng.choice(("according to the guide , ", "records show that ", "locals say ")) + sentence
    return {"question": question, "sentence": sentence}


def _rte(rng, label, variant):
    a = _pick(rng, "rte_org")
    b, ev = _other(rng, "rte_org", a), _pick(rng, "rte_event")
    year, city = _pick(rng, "rte_year"), _pick(rng, "rte_city")
    s1 = f"{a} {ev} {b} in {year} , and later opened an office in {city} ."
    kind = rng.randrange(3)
    if label == 0:
        s2 = (f"{a} {ev} {b} .", f"{a} {ev} {b} in {year} .", f"{a} opened an office in {city} .")[kind]
    else:
        s2 = (f"{b} {ev} {a} .", f"{a} {ev} {b} in {_other(rng, 'rte_year', year)} .",
              f"{a} opened an office in {_other(rng, 'rte_city', city)} .")[kind]
    return {"sentence1": s1, "sentence2": s2}


def _wnli(rng, label, variant):
    thing, box = _pick(rng, "wnli_pairs")
    adj = rng.choice(("big", "small"))
    referent = thing if adj == "big" else box
    s1 = _pick(rng, "wnli_frame").format(a=thing, b=box, adj=adj)
    x = referent if label == 1 else (box if referent == thing else thing)
    return {"sentence1": s1, "sentence2": f"the {x} was too {adj} ."}


def _glue_split(task: str, split: str, n: int, seed: int) -> dict:
    rng = random.Random(f"ptmbench-demo:{task}:{split}:{seed}")
    variant = "mismatched" if split.endswith("mismatched") else "matched"
    entry = registry.get(task)
    names, generate = entry.labels, globals()[entry.demo]
    cols: dict[str, list] = {c: [] for c in entry.columns}
    for i in range(n):
        if names is None:  # regression (stsb): label = k shared slots of 5 (score range [0, 5]), plus noise
            lo, hi = entry.score_range
            k = rng.randint(0, len(_STS_SLOTS))
            row = generate(rng, k, variant)
            label = round(min(hi, max(lo, k + rng.uniform(-0.4, 0.4))), 3)
        else:
            label = rng.randrange(len(names))
            row = generate(rng, label, variant)
            if rng.random() < NOISE:
                label = rng.choice([x for x in range(len(names)) if x != label])
        for c in entry.text:
            cols[c].append(row[c])
        cols["label"].append(-1 if split.startswith("test") and names is not None
                             else (-1.0 if split.startswith("test") else label))
        cols["idx"].append(i)
    return cols


def demo_glue(task: str, seed: int = 0, n_train: int = 256, n_validation: int = 128) -> datasets.DatasetDict:
    """The embedded demo of GLUE ``task``: exact hub schema, ``n_train`` / ``n_validation`` rows.

    Test splits (``max(8, n_validation // 2)`` rows) are unlabelled (label -1), as on the hub.
    """
    entry = registry.get(task)
    if entry.kind == "qa" or entry.demo is None:
        raise ValueError(f"task {task!r} has no GLUE demo data; GLUE tasks with demo data: "
                         f"{[t for t in registry.PUBLISHED if registry.get(t).kind != 'qa']}")
    sizes = {"train": n_train}
    for split in entry.splits[1:]:
        sizes[split] = n_validation if split in entry.eval_splits else max(8, n_validation // 2)
    feats = features(task)
    return datasets.DatasetDict({
        split: datasets.Dataset.from_dict(_glue_split(task, split, n, seed), features=feats,
                                          split=datasets.NamedSplit(split))
        for split, n in sizes.items()
    })


# --------------------------------------------------------------------------------------------------
# SQuAD v2 demo generator

_SQ_FACTS = {  # attribute -> (fact template, question templates); {v} is the answer span
    "city": ("{name} was born in {v} .", ("where was {name} born ?", "in which city was {first} born ?")),
    "year": ("{first} came into the world in {v} .", ("in what year was {name} born ?",
                                                     "when was {first} born ?")),
    "job": ("{first} works as a {v} .", ("what is {first} 's job ?", "what does {name} do for a living ?")),
    "org": ("{first} is employed by {v} .", ("who employs {first} ?", "where does {name} work ?")),
    "pet": ("at home , {first} keeps {v} .", ("what pet does {first} have ?",
                                              "which animal lives with {name} ?")),
}


def _sq_value(rng, attr):
    if attr == "year":
        return str(rng.randint(1900, 2005))
    return _pick(rng, {"city": "sq_city", "job": "sq_job", "org": "sq_org", "pet": "sq_pet"}[attr])


def _squad_split(split: str, n_questions: int, seed: int) -> dict:
    import hashlib

    rng = random.Random(f"ptmbench-demo:squad_v2:{split}:{seed}")
    articles, count, p = [], 0, 0
    while count < n_questions:
        first, last = _pick(rng, "sq_first"), _pick(rng, "sq_last")
        name = f"{first} {last}"
        attrs = list(_SQ_FACTS)
        stated = rng.sample(attrs, rng.randint(3, 4))
        rng.shuffle(stated)
        context, spans = "", {}
        for attr in stated:
            value = _sq_value(rng, attr)
            fact = _SQ_FACTS[attr][0].format(name=name, first=first, v="\0")
            start = len(context) + (1 if context else 0) + fact.index("\0")
            context = f"{context} {fact.replace(chr(0), value)}" if context else fact.replace("\0", value)
            spans[attr] = (value, start)
        qas = []
        for attr in attrs:
            answerable = attr in spans
            if not answerable and rng.random() < 0.4:
                continue
            question = rng.choice(_SQ_FACTS[attr][1]).format(name=name, first=first)
            if answerable and rng.random() < 0.2:  # the same question about someone else: no answer
                other = _other(rng, "sq_first", first)
                question = rng.choice(_SQ_FACTS[attr][1]).format(name=f"{other} {last}", first=other)
                answerable = False
            qid = hashlib.sha1(f"{split}:{seed}:{p}:{attr}".encode()).hexdigest()[:24]
            if answerable:
                value, start = spans[attr]
                assert context[start:start + len(value)] == value
                qas.append({"question": question, "id": qid, "answers": [{"text": value, "answer_start": start}],
                            "is_impossible": False})
            else:
                qa = {"question": question, "id": qid, "answers": [], "is_impossible": True}
                if attr in spans:
                    qa["plausible_answers"] = [{"text": spans[attr][0], "answer_start": spans[attr][1]}]
                qas.append(qa)
            count += 1
            if count >= n_questions:
                break
        articles.append({"title": f"{first.title()}_{last.title()}_{p}",
                         "paragraphs": [{"qas": qas, "context": context}]})
        p += 1
    return {"version": "v2.0", "data": articles}


def demo_squad(seed: int = 0, n_train: int = 256, n_validation: int = 128) -> tuple[dict, dict]:
    """The embedded SQuAD v2 demo: (train, dev) JSON objects with ``n_train`` / ``n_validation``
    questions, about a third of them unanswerable (``is_impossible``, empty ``answers``)."""
    return _squad_split("train", n_train, seed), _squad_split("dev", n_validation, seed)


def validate_squad(obj, what: str = "SQuAD v2 JSON") -> dict:
    """Check the SQuAD v2.0 structure (version, articles, paragraphs, questions with a unique id and a
    question string, answers with a ``text`` string at an integer ``answer_start``); return ``obj``.
    A file without questions is refused. Errors name the article / paragraph or question id."""
    def bad(msg):
        raise ValueError(f"{what} is not valid SQuAD v2.0: {msg}; fix the file (or use the official "
                         "download) and re-run acquire")

    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        bad("expected an object with a 'data' list of articles")
    if obj.get("version") != "v2.0":
        bad(f"version is {obj.get('version')!r}, expected 'v2.0'")
    n, ids = 0, set()
    for a, article in enumerate(obj["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs", []), list):
            bad(f"data[{a}] needs a 'paragraphs' list")
        for p, para in enumerate(article.get("paragraphs", [])):
            ctx = para.get("context") if isinstance(para, dict) else None
            if not isinstance(ctx, str) or not isinstance(para.get("qas"), list):
                bad(f"data[{a}].paragraphs[{p}] needs a 'context' string and a 'qas' list")
            for q, qa in enumerate(para["qas"]):
                here = f"data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(qa, dict) or not {"id", "question", "answers"} <= set(qa):
                    bad(f"{here} (question {qa.get('id') if isinstance(qa, dict) else qa!r}) lacks one of "
                        "id, question, answers")
                if qa["id"] in ids:
                    bad(f"{here}: question id {qa['id']!r} is not unique")
                ids.add(qa["id"])
                if not isinstance(qa["question"], str) or not isinstance(qa["answers"], list):
                    bad(f"question {qa['id']!r}: 'question' must be a string and 'answers' a list, got "
                        f"{qa['question']!r} and {qa['answers']!r}")
                if qa.get("is_impossible", False) != (len(qa["answers"]) == 0):
                    bad(f"question {qa['id']!r}: is_impossible={qa.get('is_impossible')} but "
                        f"{len(qa['answers'])} answers")
                for ans in qa["answers"]:
                    s, t = (ans.get("answer_start"), ans.get("text")) if isinstance(ans, dict) \
                        else (None, None)
                    if isinstance(s, bool) or not isinstance(s, int) or not isinstance(t, str):
                        bad(f"question {qa['id']!r}: answer {ans!r} needs a 'text' string and an integer "
                            "'answer_start'")
                    if ctx[s:s + len(t)] != t:
                        bad(f"question {qa['id']!r}: answer {t!r} is not at {s} in its context")
                n += 1
    if n == 0:
        bad("no questions")
    return obj
