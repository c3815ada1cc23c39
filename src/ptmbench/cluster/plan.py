"""Cost planner: jobs, GPU-hours and disk of a configuration, before anything runs (offline).

    python -m ptmbench.cli.plan --configfile config/config.yaml [--directory .] [--jobs 200] [--json]

Per stage (Snakemake rule) it reports the job count (equal to the DAG's), the cluster submissions
(:func:`submissions`), estimated GPU- and CPU-hours, the FLOP floor (the GPU-hours of the stage's
FLOPs at 100% of the GPU's bf16 dense peak, :data:`GPU_PEAK_FLOPS`; ``--gpu``) and the disk the
stage's outputs take; then the weights kept with and without ``merge.keep`` and the peak disk of the
run. The model (constants below, see docs/cluster.md):

* Parameters ``N`` of a model: a built-in table of the 12 published encoders (stored parameters,
  layers, hidden size); any other model from its ``config.json`` (and exact stored parameters from
  ``model.safetensors`` when the weights are already in ``resources/models/{base}``).
  Compute parameters ``N_c = L (4h^2 + 2 h i)`` (the transformer blocks; ALBERT shares storage,
  not compute).
* Tokens ``T`` of a task: examples (published train sizes, or the demo sizes / ``max_train_examples``)
  x mean tokens per example (typical BERT WordPiece lengths) x ``PAD_FACTOR`` (length-grouped
  dynamic padding).
* Fine-tune time = ``6 N_c T E / (peak * MFU)`` + steps x ``STEP_S`` x L/12 + ``JOB_S``
  (E epochs, steps = examples E / batch; the per-step term is the optimiser, kernel launches and
  data loading that dominate short GLUE sequences). LogME = one forward pass ``2 N_c T`` over the
  training examples (``logme.max_examples``) + batches x ``FWD_STEP_S`` x L/12 + ``JOB_S``.
* FLOP floor: the FLOPs alone at 100% of peak, no padding, no fixed costs: fine-tune
  ``6 N_c T E`` (training) + ``2 N_c T_eval`` (evaluation, forward only); LogME ``2 N_c T``.
* Disk: weights ``N x 4`` bytes (fp32 safetensors), tokenised data ``TOKEN_BYTES`` per token.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ptmbench.cluster.grouping import LOCAL_RULES, Grouping
from ptmbench.cluster.grouping import submissions as group_submissions
from ptmbench.core import naming, paths
from ptmbench.core import tasks as registry
from ptmbench.io.checkpoint import WEIGHTS, stored_parameters
from ptmbench.runtime import devices

# --- constants (documented in docs/cluster.md) ---------------------------------------------------
# bf16 dense tensor-core peak of each GPU the planner knows, FLOP/s (no sparsity), by a short name
# (a100, h100, h100-pcie, h200): the one table of peaks is ptmbench.runtime.devices.PEAK_BF16_FLOPS.
GPU_PEAK_FLOPS: dict[str, float] = {k.lower().replace(" ", "-"): v for k, v in devices.PEAK_BF16_FLOPS.items()}
DEFAULT_GPU = "a100"
PEAK_FLOPS = GPU_PEAK_FLOPS[DEFAULT_GPU]  # kept for callers of the A100 default
# The time model of a GPU job. NOT CALIBRATED ON A GPU YET: no GPU was lent while these were set; they
# are educated guesses for an A100. bench/gpu_check.py measures, on the GPU it runs on, the model FLOP
# utilisation of a bert-base-shaped fine-tune (-> MFU), the seconds per optimiser step of short GLUE
# batches less their FLOP time (-> STEP_S), the LogME feature-extraction seconds per batch
# (-> FWD_STEP_S) and the start-up of a job before its first step (-> JOB_S); put its figures here.
MFU = 0.30  # fraction of peak reached by the matrix products of a BERT fine-tune
STEP_S = 0.040  # fixed seconds per optimiser step of a 12-layer model (launches, AdamW, data)
FWD_STEP_S = 0.010  # fixed seconds per forward-only batch of a 12-layer model
JOB_S = 120.0  # per GPU job: start-up, model/data loading, CUDA init, evaluation set-up
PAD_FACTOR = 1.1  # padded / real tokens with length-grouped dynamic padding
BYTES_PER_PARAM = 4  # fp32 safetensors
TOKEN_BYTES = 8  # tokenised data on disk: input_ids int32 + mask/type ids + Arrow offsets
CPU_JOB_S = {"acquire_model": 300, "acquire_glue": 120, "acquire_squad": 60, "acquire_custom": 60, "merge": 60,
             "graph": 120, "export": 1800, "published": 30, "compare": 60, "report": 120, "hub": 60}
TOKENIZE_TOKENS_PER_S = 2e5  # fast tokenizer, one core

# Published encoders: stored parameters (AutoModel, no task head), layers, hidden size.
MODELS: dict[str, tuple[int, int, int]] = {
    "albert-base-v2": (11_683_584, 12, 768),
    "albert-large-v2": (17_683_968, 24, 1024),
    "bert-base-uncased": (109_482_240, 12, 768),
    "bert-large-uncased": (335_141_888, 24, 1024),
    "distilbert-base-uncased": (66_362_880, 6, 768),
    "distilroberta-base": (82_118_400, 6, 768),
    "electra-base-discriminator": (108_891_648, 12, 768),
    "electra-large-discriminator": (334_092_288, 24, 1024),
    "roberta-base": (124_645_632, 12, 768),
    "roberta-large": (355_359_744, 24, 1024),
    "xlm-roberta-base": (278_043_648, 12, 768),
    "xlm-roberta-large": (559_890_432, 24, 1024),
}
# The published unseen models (config/config.yaml unseen_models), by hub id (two ids share a last part:
# google-bert/ and dbmdz/bert-base-german-cased): counted from each architecture's published config
# (vocabulary, layers, hidden, heads) on PyTorch's meta device. Layers: those run, Funnel's repeated
# layers included (medium-base: blocks of 6, 3 x 2 and 3 x 2).
MODELS_BY_ID: dict[str, tuple[int, int, int]] = {
    "google-bert/bert-base-cased": (108_310_272, 12, 768),
    "google-bert/bert-large-cased": (333_579_264, 24, 1024),
    "google-bert/bert-base-multilingual-uncased": (167_356_416, 12, 768),
    "google-bert/bert-base-multilingual-cased": (177_853_440, 12, 768),
    "google-bert/bert-base-chinese": (102_267_648, 12, 768),
    "google-bert/bert-base-german-cased": (109_081_344, 12, 768),
    "google-bert/bert-large-uncased-whole-word-masking": (335_141_888, 24, 1024),
    "google-bert/bert-large-cased-whole-word-masking": (333_579_264, 24, 1024),
    "dbmdz/bert-base-german-cased": (109_927_680, 12, 768),
    "dbmdz/bert-base-german-uncased": (109_927_680, 12, 768),
    "tohoku-nlp/bert-base-japanese": (110_617_344, 12, 768),
    "tohoku-nlp/bert-base-japanese-whole-word-masking": (110_617_344, 12, 768),
    "tohoku-nlp/bert-base-japanese-char": (89_113_344, 12, 768),
    "TurkuNLP/bert-base-finnish-cased-v1": (124_521_984, 12, 768),
    "TurkuNLP/bert-base-finnish-uncased-v1": (124_521_984, 12, 768),
    "GroNLP/bert-base-dutch-cased": (109_137_408, 12, 768),
    "FacebookAI/roberta-large-mnli": (355_359_744, 24, 1024),
    "openai-community/roberta-base-openai-detector": (124_645_632, 12, 768),
    "openai-community/roberta-large-openai-detector": (355_359_744, 24, 1024),
    "distilbert/distilbert-base-cased": (65_190_912, 6, 768),
    "distilbert/distilbert-base-german-cased": (66_808_320, 6, 768),
    "distilbert/distilbert-base-multilingual-cased": (134_734_080, 6, 768),
    "almanach/camembert-base": (110_621_952, 12, 768),
    "flaubert/flaubert_small_cased": (54_366_720, 6, 512),
    "flaubert/flaubert_base_uncased": (137_321_472, 12, 768),
    "flaubert/flaubert_base_cased": (138_233_088, 12, 768),
    "flaubert/flaubert_large_cased": (373_214_208, 24, 1024),
    "funnel-transformer/small-base": (115_611_648, 12, 768),
    "funnel-transformer/medium-base": (115_611_648, 18, 768),
    "funnel-transformer/intermediate-base": (161_696_256, 18, 768),
    "funnel-transformer/large-base": (358_830_080, 24, 1024),
}

# Published train / evaluation sizes, typical tokens per example and data on disk: the task registry
# (ptmbench.core.tasks: published_size, disk_mb). A custom task's sizes: its files' rows (source path), else these.
CUSTOM_SIZE = (10_000, 1_000, 64)
CUSTOM_TOKENS = 64  # mean tokens per example of a custom task


@dataclass(frozen=True)
class ModelSize:
    params: int  # stored
    layers: int
    hidden: int
    compute_params: int  # L (4h^2 + 2hi)
    heads: int


@dataclass
class Stage:
    rule: str
    jobs: int
    submissions: int = 0  # cluster jobs after grouping (:func:`submissions`)
    gpu_hours: float = 0.0
    flop_floor_gpu_hours: float = 0.0  # the stage's FLOPs at 100% of the GPU's peak
    cpu_hours: float = 0.0
    disk_gb: float = 0.0


def peak_flops(gpu: str) -> float:
    """bf16 dense peak of ``gpu`` (a key of :data:`GPU_PEAK_FLOPS`, any case), with a clear error otherwise."""
    try:
        return GPU_PEAK_FLOPS[gpu.lower()]
    except KeyError:
        raise ValueError(f"unknown GPU {gpu!r}: the planner knows the bf16 peaks of "
                         f"{', '.join(sorted(GPU_PEAK_FLOPS))} (ptmbench.cluster.plan.GPU_PEAK_FLOPS); "
                         "add yours there") from None


def submissions(jobs: list[paths.Job], grouping: Grouping | None = None) -> dict[str, int]:
    """Cluster submissions per rule after job grouping (:func:`ptmbench.cluster.grouping.submissions`; default:
    the groups of profiles/slurm, ``Grouping()`` for none). Grouping counts per stage; a stage with
    several rules (acquire) is never grouped, so each of its rules submits one job per job. The rule
    ``all`` gathers targets in the main Snakemake process and is never submitted."""
    per_stage = group_submissions(jobs, grouping)
    per_rule = Counter(j.rule for j in jobs)
    out = {"all": 0}
    for rule, n in per_rule.items():
        if rule in per_stage:
            out[rule] = per_stage[rule]
        elif rule not in LOCAL_RULES:
            out[rule] = n
    if sum(out.values()) != per_stage["total"]:
        raise ValueError("a stage with several rules is grouped in the profile; ptmbench.cluster.plan cannot split its "
                         "submissions by rule: count them with `python -m ptmbench.cli.grouping`")
    return out


def _from_config_json(cfg: dict, stored: int | None = None) -> ModelSize:
    h = cfg.get("hidden_size", cfg.get("dim"))
    layers = cfg.get("num_hidden_layers", cfg.get("n_layers"))
    inter = cfg.get("intermediate_size", cfg.get("hidden_dim", 4 * h))
    heads = cfg.get("num_attention_heads", cfg.get("n_heads", max(1, h // 64)))
    block = 4 * h * h + 2 * h * inter
    if stored is None:
        e = cfg.get("embedding_size", h)
        emb = (cfg.get("vocab_size", 30522) + cfg.get("max_position_embeddings", 512) + 2) * e
        stored = emb + (1 if cfg.get("model_type") == "albert" else layers) * block
    return ModelSize(int(stored), int(layers), int(h), int(layers * block), int(heads))


def model_size(name: str, spec: dict, workdir: Path = Path(".")) -> ModelSize:
    """Size of model ``name``: its acquired weights, else its config.json, else the built-in table."""
    acquired = workdir / paths.model_dir(name)
    candidates = [acquired]
    if spec.get("source") == "path":
        candidates.append(Path(spec["path"]))
    elif spec.get("source") == "package":
        from ptmbench.stages.acquire import package_dir  # acquire imports datasets: only for this source

        candidates.append(package_dir(name, spec))
    for d in candidates:
        if (d / "config.json").is_file():
            cfg = json.loads((d / "config.json").read_text())
            st = d / WEIGHTS
            return _from_config_json(cfg, stored_parameters(st) if st.is_file() else None)
    if spec.get("source") == "tiny":
        from ptmbench.data.tiny import TINY_SIZE as s  # tiny imports datasets: only for this source

        return _from_config_json({"hidden_size": s["hidden"], "num_hidden_layers": s["layers"],
                                  "intermediate_size": s["intermediate"], "vocab_size": s["vocab"],
                                  "num_attention_heads": s["heads"],
                                  "model_type": "albert" if spec.get("family") == "albert" else "x"})
    key = spec.get("id", name).split("/")[-1]
    known = MODELS_BY_ID.get(spec.get("id", "")) or MODELS.get(key)
    if known:
        params, layers, h = known
        return ModelSize(params, layers, h, layers * 12 * h * h, h // 64)
    raise ValueError(f"model {name!r}: size unknown offline (not one of the published {sorted(MODELS)} "
                     f"nor {sorted(MODELS_BY_ID)}, "
                     f"no config.json in {[str(c) for c in candidates]}); acquire it first "
                     "(snakemake --until acquire_model) or give it as a local path")


def task_examples(config: dict, task: str) -> tuple[int, int, int]:
    """(train examples used, evaluation examples, mean tokens per example) of ``task``."""
    entry = registry.get(task)
    if entry.custom:
        train, evaluation, length = custom_size(entry)
    else:
        train, evaluation, length = entry.published_size
        spec = config["data"][entry.data]
        if spec.get("source") == "demo":
            train = spec.get("n_train", train)
            evaluation = spec.get("n_validation", evaluation)
    family = entry.hp_family
    cap = config["finetune"][family].get("max_train_examples")
    if cap:
        train = min(train, cap)
    max_len = config["finetune"][family].get("max_length", 512)
    return train, evaluation, min(length, max_len)


def custom_size(entry) -> tuple[int, int, int]:
    """(train rows, validation rows, mean tokens) of a custom task: its files' lines when they are local
    and exist (CSV / TSV less the header), else :data:`CUSTOM_SIZE`."""
    spec = entry.source
    if spec["source"] != "path":
        return CUSTOM_SIZE
    rows = []
    for split in ("train", "validation"):
        path = Path(spec[split]).expanduser()
        if not path.is_file():
            return CUSTOM_SIZE
        with open(path, "rb") as fh:
            lines = sum(1 for line in fh if line.strip())
        rows.append(max(1, lines - (path.suffix.lower() in (".csv", ".tsv"))))
    return rows[0], rows[1], CUSTOM_TOKENS


def finetune_flops(size: ModelSize, train: int, evaluation: int, length: int, epochs: float,
                   pad: float = 1.0) -> float:
    """FLOPs of one fine-tune: ``6 N_c T E`` of training + ``2 N_c T_eval`` of evaluation (forward only);
    ``pad``: padded / real training tokens (1 for the floor)."""
    return 6 * size.compute_params * train * length * pad * epochs + 2 * size.compute_params * evaluation * length


def logme_flops(size: ModelSize, train: int, length: int, pad: float = 1.0) -> float:
    """FLOPs of one LogME job: one forward pass ``2 N_c T`` over its examples."""
    return 2 * size.compute_params * train * length * pad


def finetune_seconds(size: ModelSize, train: int, evaluation: int, length: int, hp: dict,
                     peak: float = PEAK_FLOPS) -> float:
    epochs = float(hp["epochs"])
    steps = train * epochs / hp["batch_size"]
    flops = finetune_flops(size, train, evaluation, length, epochs, PAD_FACTOR)
    return flops / (peak * MFU) + steps * STEP_S * size.layers / 12 + JOB_S


def logme_seconds(size: ModelSize, train: int, length: int, batch: int, peak: float = PEAK_FLOPS) -> float:
    flops = logme_flops(size, train, length, PAD_FACTOR)
    return flops / (peak * MFU) + train / batch * FWD_STEP_S * size.layers / 12 + JOB_S


class _Costs:
    """Per-job costs of one config, memoised per (base model, task)."""

    def __init__(self, config: dict, sizes: dict[str, ModelSize], data: dict[str, tuple[int, int, int]],
                 peak: float = PEAK_FLOPS):
        self.config, self.sizes, self.data, self.peak = config, sizes, data, peak
        self._ft: dict[tuple[str, str], tuple[float, float]] = {}
        self._lm: dict[tuple[str, str], tuple[float, float]] = {}

    def weights_gb(self, base: str) -> float:
        return self.sizes[base].params * BYTES_PER_PARAM * 1e-9

    def finetune_h(self, base: str, task: str) -> tuple[float, float]:
        """(planned GPU-hours, FLOP-floor GPU-hours) of one fine-tune of a PTM of ``base`` on ``task``."""
        if (base, task) not in self._ft:
            train, evaluation, length = self.data[task]
            hp = naming.hyperparameters(self.config, base, task)
            size = self.sizes[base]
            self._ft[base, task] = (
                finetune_seconds(size, train, evaluation, length, hp, self.peak) / 3600,
                finetune_flops(size, train, evaluation, length, float(hp["epochs"])) / self.peak / 3600)
        return self._ft[base, task]

    def early_stop_h(self, base: str, task: str) -> tuple[float, float]:
        """(planned GPU-hours, FLOP-floor GPU-hours) of one fine-tuning proxy (rule early_stop): the
        recipe's first ``early_stop.steps`` optimiser steps (steps x batch training examples, at most
        the full run's) and the full evaluation."""
        train, evaluation, length = self.data[task]
        hp = naming.hyperparameters(self.config, base, task)
        steps = (self.config.get("early_stop") or {}).get("steps") or 0
        seen = min(train * float(hp["epochs"]), steps * int(hp["batch_size"]))
        size = self.sizes[base]
        return (finetune_seconds(size, seen, evaluation, length, {**hp, "epochs": 1.0}, self.peak) / 3600,
                finetune_flops(size, seen, evaluation, length, 1.0) / self.peak / 3600)

    def logme_h(self, base: str, task: str) -> tuple[float, float]:
        """(planned GPU-hours, FLOP-floor GPU-hours) of one LogME job of a PTM of ``base`` on ``task``."""
        if (base, task) not in self._lm:
            train, _, length = self.data[task]
            cap = self.config["logme"]["max_examples"]
            train = train if cap is None else min(train, cap)
            size = self.sizes[base]
            self._lm[base, task] = (
                logme_seconds(size, train, length, self.config["logme"]["batch_size"], self.peak) / 3600,
                logme_flops(size, train, length) / self.peak / 3600)
        return self._lm[base, task]

    def tokens(self, task: str) -> float:
        train, evaluation, length = self.data[task]
        return (train + evaluation) * length

    def graph_gb(self, base: str) -> float:
        size = self.sizes[base]
        return size.layers * size.heads * 2 * self.config["graph"]["feature_length"] * 8 * 1e-9


# ((GPU-hours, FLOP-floor GPU-hours), CPU-hours besides CPU_JOB_S, disk GB) of one job of each rule,
# from its base model and task.
_NO_GPU = (0.0, 0.0)
COSTS = {
    "acquire_model": lambda c, b, t: (_NO_GPU, 0.0, c.weights_gb(b)),
    "acquire_glue": lambda c, b, t: (_NO_GPU, 0.0, registry.get(t).disk_mb * 1e-3),
    "acquire_custom": lambda c, b, t: (_NO_GPU, 0.0, registry.get(t).disk_mb * 1e-3),
    "acquire_squad": lambda c, b, t: (_NO_GPU, 0.0, registry.get(t).disk_mb * 1e-3),
    "tokenize": lambda c, b, t: (_NO_GPU, c.tokens(t) / TOKENIZE_TOKENS_PER_S / 3600, c.tokens(t) * TOKEN_BYTES * 1e-9),
    "finetune_base": lambda c, b, t: (c.finetune_h(b, t), 0.0, c.weights_gb(b)),
    "merge": lambda c, b, t: (_NO_GPU, 0.0, c.weights_gb(b)),
    "finetune_merged": lambda c, b, t: (c.finetune_h(b, t), 0.0, 0.0),
    "finetune_seed": lambda c, b, t: (c.finetune_h(b, t), 0.0, 0.0),  # each extra seed: base and merged PTMs
    "graph": lambda c, b, t: (_NO_GPU, 0.0, c.graph_gb(b)),
    "logme": lambda c, b, t: (c.logme_h(b, t), 0.0, 0.0),
    "early_stop": lambda c, b, t: (c.early_stop_h(b, t), 0.0, 0.0),  # metrics only, no weights
    "export": lambda c, b, t: (_NO_GPU, 0.0, 0.0),
    "published": lambda c, b, t: (_NO_GPU, 0.0, 0.0),
    "compare": lambda c, b, t: (_NO_GPU, 0.0, 0.0),
    "report": lambda c, b, t: (_NO_GPU, 0.0, 0.0),
    "hub": lambda c, b, t: (_NO_GPU, 0.0, 0.0),  # hard links of the export and tables
}
_SUMMED = ("jobs", "submissions", "gpu_hours", "flop_floor_gpu_hours", "cpu_hours")


def plan(config: dict, workdir: Path = Path("."), jobs: int = 200, gpu: str = DEFAULT_GPU,
         grouping: Grouping | None = None) -> dict:
    """The bill of ``config`` (validated) on GPUs of kind ``gpu`` (:data:`GPU_PEAK_FLOPS`): per-stage
    rows, totals (the sums of the rows), and disk with/without merge.keep.

    Every job of the DAG (:func:`ptmbench.core.paths.jobs`) is costed by its rule (:data:`COSTS`);
    submissions are counted with the Slurm profile's job groups, or ``grouping`` (:func:`submissions`)."""
    peak = peak_flops(gpu)
    zoo = paths.Zoo.from_config(config)
    specs = config["models"] | config.get("unseen_models", {})
    sizes = {b: model_size(b, specs[b], workdir) for b in zoo.bases}
    data = {t: task_examples(config, t) for t in zoo.tasks}
    cost = _Costs(config, sizes, data, peak)
    rules = [r for r in paths.RULES  # no row without custom tasks / extra seeds
             if (r != "acquire_custom" or zoo.custom) and (r != "finetune_seed" or zoo.extra_seeds)
             and (r != "early_stop" or zoo.early_stop)]
    st = {r: Stage(r, 0) for r in (*rules, "all")}
    st["all"].jobs = 1
    all_jobs = list(paths.jobs(zoo))
    for job in all_jobs:
        s = st[job.rule]
        s.jobs += 1
        (gpu_h, floor_h), cpu_h, disk_gb = COSTS[job.rule](cost, job.base, job.task)
        s.gpu_hours += gpu_h
        s.flop_floor_gpu_hours += floor_h
        s.cpu_hours += cpu_h + CPU_JOB_S.get(job.rule, 0) / 3600
        s.disk_gb += disk_gb
    counted = submissions(all_jobs, grouping)
    for r, s in st.items():
        s.submissions = int(counted.get(r, 0))
    gb = 1e-9
    merged_gb = st["merge"].disk_gb
    total_gb = sum(s.disk_gb for s in st.values())
    biggest_merged = max((sizes[b].params * BYTES_PER_PARAM * gb for b in zoo.models), default=0.0)
    in_flight = min(st["merge"].jobs, jobs) * biggest_merged
    return {
        "gpu": gpu.lower(),
        "stages": [asdict(s) for s in st.values()],
        "total": {key: sum(getattr(s, key) for s in st.values()) for key in _SUMMED},
        "disk_gb": {
            "base_models": st["acquire_model"].disk_gb,
            "finetuned_weights": st["finetune_base"].disk_gb,
            "merged_weights": merged_gb,
            "kept_weights_keep_true": st["acquire_model"].disk_gb + st["finetune_base"].disk_gb + merged_gb,
            "kept_weights_keep_false": st["acquire_model"].disk_gb + st["finetune_base"].disk_gb,
            "peak_keep_true": total_gb,
            # temp() merged weights live from their merge until their last consumer: at most one per
            # concurrently running job (Snakemake does not order jobs to minimise temp disk).
            "peak_keep_false_at_most": total_gb - merged_gb + min(merged_gb, in_flight),
            "merge_keep": bool(config["merge"]["keep"]),
        },
        "assumptions": {"gpu": gpu.lower(), "peak_flops": peak, "mfu": MFU, "step_s": STEP_S, "fwd_step_s": FWD_STEP_S,
                        "job_s": JOB_S, "pad_factor": PAD_FACTOR, "bytes_per_param": BYTES_PER_PARAM,
                        "token_bytes": TOKEN_BYTES, "jobs_in_flight": jobs},
        "models": {b: asdict(s) for b, s in sizes.items()},
    }


def measured_seconds(workdir: Path) -> dict[str, tuple[int, float]]:
    """Mean wall seconds per job of each rule from Snakemake's benchmark files of a previous run
    (``benchmarks/{rule}/**.tsv``), to compare the model with this machine's numbers."""
    out = {}
    for rule_dir in sorted((workdir / "benchmarks").glob("*/")):
        secs = []
        for f in rule_dir.rglob("*.tsv"):
            rows = f.read_text().splitlines()
            if len(rows) >= 2 and rows[0].split("\t")[0] == "s":
                secs.append(float(rows[-1].split("\t")[0]))
        if secs:
            out[rule_dir.name] = (len(secs), sum(secs) / len(secs))
    return out


def _ratio(planned: float, floor: float) -> str:
    return f"{planned / floor:.1f}x" if floor > 0 else "-"


def format_plan(p: dict, measured: dict | None = None) -> str:
    gpu = p["gpu"].upper()
    lines = [f"{'stage':<16}{'jobs':>8}{'submit':>8}{'GPU-h':>10}{'floor GPU-h':>12}{'/floor':>8}"
             f"{'CPU-h':>9}{'disk GB':>10}"]

    def row(name, s, disk):
        return (f"{name:<16}{s['jobs']:>8}{s['submissions']:>8}{s['gpu_hours']:>10.2f}"
                f"{s['flop_floor_gpu_hours']:>12.2f}{_ratio(s['gpu_hours'], s['flop_floor_gpu_hours']):>8}"
                f"{s['cpu_hours']:>9.2f}{disk:>10.2f}")

    lines += [row(s["rule"], s, s["disk_gb"]) for s in p["stages"]]
    t, d = p["total"], p["disk_gb"]
    lines.append(row("total", t, d["peak_keep_true"]))
    if measured:
        est = {s["rule"]: (s["gpu_hours"] + s["cpu_hours"]) * 3600 / s["jobs"] for s in p["stages"] if s["jobs"]}
        lines += ["", "measured (benchmarks/ of the work directory) vs model, seconds per job:"]
        lines += [f"  {r:<16}{n:>6} jobs  measured {m:9.1f}  model {est.get(r, float('nan')):9.1f}"
                  for r, (n, m) in measured.items()]
    lines += [
        "",
        f"weights kept: {d['kept_weights_keep_true']:.1f} GB with merge.keep=true "
        f"(base {d['base_models']:.1f} + fine-tuned {d['finetuned_weights']:.1f} + merged {d['merged_weights']:.1f}), "
        f"{d['kept_weights_keep_false']:.1f} GB with merge.keep=false",
        f"peak disk: {d['peak_keep_true']:.1f} GB with merge.keep=true; at most "
        f"{d['peak_keep_false_at_most']:.1f} GB with merge.keep=false "
        f"({p['assumptions']['jobs_in_flight']} jobs in flight)  [this config: merge.keep={d['merge_keep']}]",
        f"floor: the FLOPs at 100% of the {gpu} bf16 dense peak "
        f"({p['assumptions']['peak_flops'] / 1e12:.0f} TFLOP/s); submit: cluster jobs after grouping",
        f"assumptions (not calibrated on a GPU yet): MFU {p['assumptions']['mfu']}, "
        f"{p['assumptions']['step_s'] * 1e3:.0f} ms per training step (12 layers), "
        f"{p['assumptions']['job_s']:.0f} s per GPU job; see docs/cluster.md",
    ]
    return "\n".join(lines)
