"""Speed and peak memory of our streaming merge against the original approach, in one run.

    python bench/merge.py                                  # bert-base sized (hidden 768, 12 layers)
    python bench/merge.py --hidden 1024 --layers 24 --heads 16 --intermediate 4096   # bert-large sized
    python bench/merge.py --json out.json

Builds a randomly initialised BERT encoder of the given size (the base PTM, AutoModel layout with a
tokenizer) and two "fine-tuned" sequence-classification models of it (every parameter moved by seeded
noise, ``save_pretrained``), then merges them at ratio r, each method in a fresh Python process:

- ours (``ptmbench.stages.merge.merge_models``, published method): safetensors read tensor by tensor, no model;
- baseline, the original approach: three ``AutoModel.from_pretrained``, ``copy.deepcopy`` of the base,
  each ``.weight`` of ``state_dict()`` replaced by (1 - r) a + r b, ``load_state_dict``,
  ``save_pretrained`` and the tokenizer's ``save_pretrained``.

Both run with ``--threads`` torch threads (default 1, as the ``merge`` rule's jobs). Reports, per
method, the wall time of the whole process (interpreter start, imports, merge, write) and
of the merge call alone, and the peak resident memory (``ru_maxrss`` of the process); checks that
both outputs hold identical tensors.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import result_path, write_result


def build(root: Path, hidden: int, layers: int, heads: int, intermediate: int, vocab: int, seed: int = 0):
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, BertConfig, BertTokenizer

    base, a, b = root / "base", root / "a", root / "b"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(vocab - 5)]
    (root / "vocab.txt").write_text("\n".join(tokens) + "\n")
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=intermediate)
    torch.manual_seed(seed)
    AutoModel.from_config(cfg).save_pretrained(str(base))
    BertTokenizer(vocab_file=str(root / "vocab.txt")).save_pretrained(str(base))
    for i, out in enumerate((a, b)):
        torch.manual_seed(seed + 1 + i)
        model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=3)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.01)
        model.save_pretrained(str(out))
        del model
    return base, a, b


def child(method: str, base: str, a: str, b: str, out: str, ratio: float, threads: int) -> dict:
    """Runs in a fresh process: one merge, its time and the process's peak RSS."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    if method == "ours":
        from ptmbench.stages.merge import merge_models

        t1 = time.perf_counter()
        merge_models(base, a, b, ratio, out)
    else:
        import copy

        from transformers import AutoModel, AutoTokenizer

        t1 = time.perf_counter()
        base_model = AutoModel.from_pretrained(base)
        m1, m2 = AutoModel.from_pretrained(a), AutoModel.from_pretrained(b)
        merged = copy.deepcopy(base_model)
        sd, sd1, sd2 = merged.state_dict(), m1.state_dict(), m2.state_dict()
        for name in sd:
            if name.endswith(".weight"):
                sd[name] = (1 - ratio) * sd1[name] + ratio * sd2[name]
        merged.load_state_dict(sd)
        merged.save_pretrained(out)
        AutoTokenizer.from_pretrained(base).save_pretrained(out)
    t2 = time.perf_counter()
    return {"merge_s": t2 - t1, "in_process_s": t2 - t0,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(method, base, a, b, out, ratio, threads) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--paths", str(base), str(a), str(b), str(out),
           "--ratio", str(ratio), "--threads", str(threads)]
    os.sync()  # the previous step's dirty pages are not flushed during this measurement
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(f"{method} failed:\n{res.stderr[-3000:]}")
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    rec["process_s"] = wall
    return rec


def compare(ours: Path, baseline: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(ours / "model.safetensors"), "pt") as fo, \
            safe_open(str(baseline / "model.safetensors"), "pt") as fb:
        ko, kb = set(fo.keys()), set(fb.keys())
        common = sorted(ko & kb)
        differ = [k for k in common if not fo.get_tensor(k).equal(fb.get_tensor(k))]
    return {"tensors": len(common), "only_ours": sorted(ko - kb), "only_baseline": sorted(kb - ko),
            "differ": differ, "identical": not differ and ko == kb}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved runs; the best time is reported")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of each merge (the merge rule runs with 1 thread)")
    ap.add_argument("--json", help="the JSON written (default: bench/results/merge.json)")
    ap.add_argument("--child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--paths", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, *args.paths, args.ratio, args.threads)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        base, a, b = build(root, args.hidden, args.layers, args.heads, args.intermediate, args.vocab)
        size_mb = (base / "model.safetensors").stat().st_size / 2**20
        print(f"built base + 2 fine-tunes ({size_mb:.0f} MB each encoder) in {time.perf_counter() - t0:.1f} s",
              flush=True)
        runs = {"ours": [], "baseline": []}
        for _ in range(max(1, args.repeats)):
            for method in ("baseline", "ours"):
                runs[method].append(run_child(method, base, a, b, root / f"out-{method}", args.ratio,
                                              args.threads))
        best = {m: min(r, key=lambda x: x["process_s"]) for m, r in runs.items()}
        peak = {m: max(x["max_rss_mb"] for x in r) for m, r in runs.items()}
        check = compare(root / "out-ours", root / "out-baseline")
    result = {
        "model": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                  "intermediate": args.intermediate, "vocab": args.vocab, "encoder_mb": round(size_mb, 1)},
        "ratio": args.ratio, "repeats": args.repeats, "threads": args.threads,
        **{m: {"process_s": round(best[m]["process_s"], 2), "merge_s": round(best[m]["merge_s"], 2),
               "max_rss_mb": round(peak[m])} for m in ("ours", "baseline")},
        "speedup_process": round(best["baseline"]["process_s"] / best["ours"]["process_s"], 2),
        "speedup_merge": round(best["baseline"]["merge_s"] / best["ours"]["merge_s"], 2),
        "memory_ratio": round(peak["ours"] / peak["baseline"], 3),
        "identical_tensors": check["identical"], "tensors_compared": check["tensors"],
    }
    for m in ("baseline", "ours"):
        r = result[m]
        print(f"{m:9s} process {r['process_s']:7.2f} s   merge {r['merge_s']:7.2f} s   peak RSS {r['max_rss_mb']:6d} MB")
    print(f"speed-up {result['speedup_process']}x (process), {result['speedup_merge']}x (merge call); "
          f"peak memory ours/baseline {result['memory_ratio']}; identical tensors: {check['identical']} "
          f"({check['tensors']} compared)")
    if not check["identical"]:
        print(json.dumps(check, indent=1)[:3000])
    write_result(result_path("merge", args.json), result)
    return result


if __name__ == "__main__":
    main()
