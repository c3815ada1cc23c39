"""Stage acquire: base models and datasets, from the source each config entry names.

Models are written in the canonical ``AutoModel`` layout (``config.json``, ``model.safetensors``
with encoder keys, tokenizer files, ``provenance.json``), whatever their source:

- ``hub``: ``huggingface_hub.snapshot_download(id, revision)``, then loaded and re-saved;
- ``path``: a local directory, validated (config, weights, tokenizer) and normalised;
- ``package``: a Python package shipping a model directory (``package/subdir``);
- ``tiny``: a small randomly initialised model of one of :data:`TINY_FAMILIES`, built here.

GLUE is written with ``DatasetDict.save_to_disk`` in the exact ``nyu-mll/glue`` schema
(:data:`ptmbench.data.GLUE_FEATURES`); SQuAD v2 as the official JSON files. Sources needing the
network (``hub``, ``url``) fail fast, naming the offline alternatives, when it is unreachable.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ptmbench import data

TINY_FAMILIES: tuple[str, ...] = ("bert", "roberta", "distilbert", "albert", "electra", "xlm-roberta")
TINY_SIZE = {"hidden": 64, "heads": 4, "layers": 2, "intermediate": 128, "vocab": 2000}

# --------------------------------------------------------------------------------------------------
# tiny models


def _train_tokenizer(family: str):
    """A tokenizer of the family's kind, trained with ``tokenizers`` on :func:`data.corpus`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import AlbertTokenizer, BertTokenizer, RobertaTokenizer, XLMRobertaTokenizer

    lines = data.corpus()
    vocab_size = TINY_SIZE["vocab"]
    alphabet = string_alphabet()
    common = {"model_max_length": 512}
    if family in ("bert", "distilbert", "electra"):  # WordPiece, uncased (BERT's own pipeline)
        # The tokenizers WordPiece trainer breaks ties between equally frequent pairs in hash order,
        # so its vocabulary changes from run to run. We count instead: the vocabulary is the special
        # tokens, every character (word-initial and '##' continuation) and every corpus word, most
        # frequent first, normalised and pre-tokenized by BERT's own normaliser / pre-tokenizer.
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
        counts: dict[str, int] = {}
        for line in lines:
            for word, _ in pre.pre_tokenize_str(norm.normalize_str(line)):
                counts[word] = counts.get(word, 0) + 1
        chars = sorted({c for w in counts for c in w} | set(alphabet.lower()))
        words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
        tokens = special + chars + ["##" + c for c in chars] + words
        vocab = {t: i for i, t in enumerate(tokens[:vocab_size])}
        if family == "distilbert":
            from transformers import DistilBertTokenizer
            return DistilBertTokenizer(vocab=vocab, do_lower_case=True, **common)
        return BertTokenizer(vocab=vocab, do_lower_case=True, **common)
    if family == "roberta":  # byte-level BPE, cased
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.train_from_iterator(lines, trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=special, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        model = json.loads(tok.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        vocab = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1]))
        return RobertaTokenizer(vocab=vocab, merges=merges, **common)
    if family in ("albert", "xlm-roberta"):  # SentencePiece-style Unigram
        if family == "albert":
            special, unk = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], "<unk>"
        else:
            special, unk = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<unk>"
        tok = Tokenizer(models.Unigram())
        if family == "albert":
            tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(),
                                                   normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                     pre_tokenizers.Metaspace(replacement="▁")])
        tok.train_from_iterator(lines, trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=special, unk_token=unk, initial_alphabet=list(alphabet),
            show_progress=False))
        vocab = [(p, float(sc)) for p, sc in json.loads(tok.to_str())["model"]["vocab"]]
        if [p for p, _ in vocab[:len(special)]] != special:
            raise RuntimeError(f"unigram trainer reordered the special tokens: {vocab[:len(special)]}")
        # The trainer gives the characters it adds to the alphabet (those seen as whole characters only)
        # slightly different scores in hash order; round and sort so the result is reproducible.
        low = min(sc for _, sc in vocab[len(special):]) + 0.01
        pieces = sorted(((p, round(sc, 4) if sc > low else float(math.floor(low) - 1))
                         for p, sc in vocab[len(special):]), key=lambda ps: (-ps[1], ps[0]))
        vocab = [(p, 0.0) for p in special] + pieces
        cls = AlbertTokenizer if family == "albert" else XLMRobertaTokenizer
        return cls(vocab=vocab, **common)
    raise ValueError(f"unknown tiny family {family!r}; choose one of {list(TINY_FAMILIES)}")


def string_alphabet() -> str:
    import string
    return string.ascii_letters + string.digits + string.punctuation


def _tiny_config(family: str, tokenizer):
    from transformers import (
        AlbertConfig, BertConfig, DistilBertConfig, ElectraConfig, RobertaConfig, XLMRobertaConfig,
    )

    s, v = TINY_SIZE, len(tokenizer)
    ids = {"pad_token_id": tokenizer.pad_token_id}
    if family in ("roberta", "xlm-roberta", "albert"):
        ids |= {"bos_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id}
    bert_like = {"vocab_size": v, "hidden_size": s["hidden"], "num_hidden_layers": s["layers"],
                 "num_attention_heads": s["heads"], "intermediate_size": s["intermediate"],
                 "max_position_embeddings": 512, "type_vocab_size": 2, **ids}
    if family == "bert":
        return BertConfig(**bert_like)
    if family == "electra":
        return ElectraConfig(embedding_size=s["hidden"], **bert_like)
    if family == "albert":  # one layer group: every layer shares the same weights
        return AlbertConfig(embedding_size=s["hidden"] // 2, num_hidden_groups=1, inner_group_num=1,
                            **bert_like)
    if family in ("roberta", "xlm-roberta"):  # positions start at pad_token_id + 1
        cfg = RobertaConfig if family == "roberta" else XLMRobertaConfig
        return cfg(**{**bert_like, "max_position_embeddings": 512 + tokenizer.pad_token_id + 1,
                      "type_vocab_size": 1})
    if family == "distilbert":
        return DistilBertConfig(vocab_size=v, dim=s["hidden"], n_layers=s["layers"], n_heads=s["heads"],
                                hidden_dim=s["intermediate"], max_position_embeddings=512, **ids)
    raise ValueError(f"unknown tiny family {family!r}; choose one of {list(TINY_FAMILIES)}")


def build_tiny(family: str, out_dir, seed: int = 0) -> None:
    """Build a small randomly initialised ``family`` encoder with a working tokenizer into ``out_dir``.

    Hidden size 64, 4 heads, 2 layers, intermediate 128, 512 positions; the tokenizer is of the
    family's kind (WordPiece, byte-level BPE or Unigram) trained on the demo corpus. Deterministic:
    the same (family, seed) gives byte-identical files. Writes ``out_dir`` directly (callers that
    need atomicity wrap it in :func:`ptmbench.provenance.atomic_dir`).
    """
    import torch
    from transformers import AutoModel

    if family not in TINY_FAMILIES:
        raise ValueError(f"unknown tiny family {family!r}; choose one of {list(TINY_FAMILIES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = _train_tokenizer(family)
    config = _tiny_config(family, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModel.from_config(config)
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
