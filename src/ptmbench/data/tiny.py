"""Tiny randomly initialised encoders of many architectures, with working tokenizers (the ``tiny`` source).

One :class:`Family` per architecture in :data:`FAMILIES`: how its tokenizer is made (a kind of
vocabulary, WordPiece, byte-level BPE or Unigram, trained on :func:`ptmbench.data.schemas.corpus`, put into the
family's own tokenizer class) and how its config is made from :data:`TINY_SIZE` and the tokenizer.
:func:`build_tiny` builds one offline and deterministically: the same (family, seed) gives
byte-identical files. Adding an architecture is one entry in :data:`FAMILIES`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ptmbench.data import schemas as data

TINY_SIZE = {"hidden": 64, "heads": 4, "layers": 2, "intermediate": 128, "vocab": 2000}
MAX_LENGTH = 512
BERT_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ROBERTA_SPECIAL = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def string_alphabet() -> str:
    import string
    return string.ascii_letters + string.digits + string.punctuation


# --------------------------------------------------------------------------------------------------
# vocabularies, by kind


def wordpiece_vocab(special=BERT_SPECIAL) -> dict[str, int]:
    """Uncased WordPiece vocabulary: ``special``, every character (word-initial and '##'), every word.

    The tokenizers WordPiece trainer breaks ties between equally frequent pairs in hash order, so its
    vocabulary changes from run to run. We count instead: the special tokens, every character and every
    corpus word, most frequent first, normalised and pre-tokenized by BERT's own normaliser / pre-tokenizer.
    """
    from tokenizers import normalizers, pre_tokenizers

    norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts: dict[str, int] = {}
    for line in data.corpus():
        for word, _ in pre.pre_tokenize_str(norm.normalize_str(line)):
            counts[word] = counts.get(word, 0) + 1
    chars = sorted({c for w in counts for c in w} | set(string_alphabet().lower()))
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    tokens = [*special, *chars, *("##" + c for c in chars), *words]
    return {t: i for i, t in enumerate(tokens[:TINY_SIZE["vocab"]])}


def bpe_vocab(special=ROBERTA_SPECIAL) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Cased byte-level BPE (GPT-2 / RoBERTa kind): (vocab, merges)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(data.corpus(), trainers.BpeTrainer(
        vocab_size=TINY_SIZE["vocab"], special_tokens=list(special), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(sorted(model["vocab"].items(), key=lambda kv: kv[1])), merges


def unigram_vocab(special=ROBERTA_SPECIAL, unk: str = "<unk>", lowercase: bool = False) -> list[tuple[str, float]]:
    """SentencePiece-style Unigram vocabulary [(piece, score)], ``special`` first (score 0)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    special = list(special)
    tok = Tokenizer(models.Unigram())
    if lowercase:
        tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(),
                                               normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Metaspace(replacement="▁")])
    tok.train_from_iterator(data.corpus(), trainers.UnigramTrainer(
        vocab_size=TINY_SIZE["vocab"], special_tokens=special, unk_token=unk,
        initial_alphabet=list(string_alphabet()), show_progress=False))
    vocab = [(p, float(sc)) for p, sc in json.loads(tok.to_str())["model"]["vocab"]]
    if [p for p, _ in vocab[:len(special)]] != special:
        raise RuntimeError(f"unigram trainer reordered the special tokens: {vocab[:len(special)]}")
    # The trainer gives the characters it adds to the alphabet (those seen as whole characters only)
    # slightly different scores in hash order; round and sort so the result is reproducible.
    low = min(sc for _, sc in vocab[len(special):]) + 0.01
    pieces = sorted(((p, round(sc, 4) if sc > low else float(math.floor(low) - 1))
                     for p, sc in vocab[len(special):]), key=lambda ps: (-ps[1], ps[0]))
    return [(p, 0.0) for p in special] + pieces


# --------------------------------------------------------------------------------------------------
# tokenizers, by family

COMMON = {"model_max_length": MAX_LENGTH}


def _transformers(name: str):
    import transformers

    return getattr(transformers, name)


def wordpiece_tokenizer(cls: str, special=BERT_SPECIAL, **kwargs) -> Callable:
    return lambda: _transformers(cls)(vocab=wordpiece_vocab(special), do_lower_case=True, **COMMON, **kwargs)


def bpe_tokenizer(cls: str, special=ROBERTA_SPECIAL) -> Callable:
    def make():
        vocab, merges = bpe_vocab(special)
        return _transformers(cls)(vocab=vocab, merges=merges, **COMMON)
    return make


def unigram_tokenizer(cls: str, special=ROBERTA_SPECIAL, unk: str = "<unk>", lowercase: bool = False,
                      **kwargs) -> Callable:
    return lambda: _transformers(cls)(vocab=unigram_vocab(special, unk, lowercase), **COMMON, **kwargs)


def bpe_cls_sep_tokenizer() -> Callable:
    """Byte-level BPE with BERT's special tokens and ``[CLS] a [SEP] b [SEP]`` (ModernBERT's kind), as a
    generic fast tokenizer that returns no token type ids."""
    def make():
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
        from transformers import PreTrainedTokenizerFast

        vocab, merges = bpe_vocab(BERT_SPECIAL)
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
            mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"], **COMMON)
    return make


# --------------------------------------------------------------------------------------------------
# configs, by family


def _ids(tok, bos_eos: bool) -> dict:
    ids = {"pad_token_id": tok.pad_token_id}
    if bos_eos:
        ids |= {"bos_token_id": tok.cls_token_id, "eos_token_id": tok.sep_token_id}
    return ids


def bert_like(cls: str, bos_eos: bool = False, roberta_positions: bool = False, **extra) -> Callable:
    """A config with BERT's size arguments; ``roberta_positions``: positions start at pad_token_id + 1."""
    def make(tok):
        s = TINY_SIZE
        kw = {"vocab_size": len(tok), "hidden_size": s["hidden"], "num_hidden_layers": s["layers"],
              "num_attention_heads": s["heads"], "intermediate_size": s["intermediate"],
              "max_position_embeddings": MAX_LENGTH, "type_vocab_size": 2, **_ids(tok, bos_eos)}
        if roberta_positions:
            kw |= {"max_position_embeddings": MAX_LENGTH + tok.pad_token_id + 1, "type_vocab_size": 1}
        return _transformers(cls)(**kw | extra)
    return make


def distilbert_config(tok):
    s = TINY_SIZE
    return _transformers("DistilBertConfig")(
        vocab_size=len(tok), dim=s["hidden"], n_layers=s["layers"], n_heads=s["heads"],
        hidden_dim=s["intermediate"], max_position_embeddings=MAX_LENGTH, **_ids(tok, False))


def modernbert_config(tok):
    s = TINY_SIZE
    return _transformers("ModernBertConfig")(
        vocab_size=len(tok), hidden_size=s["hidden"], num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"], intermediate_size=s["intermediate"],
        max_position_embeddings=MAX_LENGTH, global_attn_every_n_layers=2, local_attention=64,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
        cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id)


# DeBERTa's disentangled relative attention, small: no absolute positions, no token types.
DEBERTA = {"relative_attention": True, "position_biased_input": False, "max_relative_positions": -1,
           "type_vocab_size": 0}


@dataclass(frozen=True)
class Family:
    """A tiny architecture: ``tokenizer()`` makes its tokenizer, ``config(tokenizer)`` its config."""

    tokenizer: Callable
    config: Callable
    kind: str  # the tokenizer's vocabulary kind, for the record: wordpiece, bpe or unigram


FAMILIES: dict[str, Family] = {
    "bert": Family(wordpiece_tokenizer("BertTokenizer"), bert_like("BertConfig"), "wordpiece"),
    "roberta": Family(bpe_tokenizer("RobertaTokenizer"), bert_like("RobertaConfig", True, True), "bpe"),
    "distilbert": Family(wordpiece_tokenizer("DistilBertTokenizer"), distilbert_config, "wordpiece"),
    # one layer group: every layer shares the same weights
    "albert": Family(unigram_tokenizer("AlbertTokenizer", ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"),
                                       lowercase=True),
                     bert_like("AlbertConfig", True, embedding_size=TINY_SIZE["hidden"] // 2,
                               num_hidden_groups=1, inner_group_num=1), "unigram"),
    "electra": Family(wordpiece_tokenizer("BertTokenizer"),
                      bert_like("ElectraConfig", embedding_size=TINY_SIZE["hidden"]), "wordpiece"),
    "xlm-roberta": Family(unigram_tokenizer("XLMRobertaTokenizer"),
                          bert_like("XLMRobertaConfig", True, True), "unigram"),
    # architectures beyond the published zoo
    "camembert": Family(unigram_tokenizer("CamembertTokenizer"),
                        bert_like("CamembertConfig", True, True), "unigram"),
    "ernie": Family(wordpiece_tokenizer("BertTokenizer"), bert_like("ErnieConfig"), "wordpiece"),
    "deberta": Family(bpe_tokenizer("DebertaTokenizer", ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")),
                      bert_like("DebertaConfig", pos_att_type=["c2p", "p2c"], **DEBERTA), "bpe"),
    "deberta-v2": Family(unigram_tokenizer("DebertaV2Tokenizer", ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"),
                                           "[UNK]"),
                         bert_like("DebertaV2Config", pos_att_type=["p2c", "c2p"], position_buckets=32,
                                   share_att_key=True, norm_rel_ebd="layer_norm", **DEBERTA), "unigram"),
    "mpnet": Family(wordpiece_tokenizer("MPNetTokenizer", ("<s>", "<pad>", "</s>", "[UNK]", "<mask>")),
                    bert_like("MPNetConfig", True, True, relative_attention_num_buckets=32), "wordpiece"),
    "modernbert": Family(bpe_cls_sep_tokenizer(), modernbert_config, "bpe"),
}
TINY_FAMILIES: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown tiny family {name!r}; choose one of {list(FAMILIES)}")
    return FAMILIES[name]


def build_tiny(family_name: str, out_dir, seed: int = 0) -> None:
    """Build a small randomly initialised encoder of ``family_name`` with a working tokenizer in ``out_dir``.

    Hidden size 64, 4 heads, 2 layers, intermediate 128, 512 positions; the tokenizer is of the
    family's kind (WordPiece, byte-level BPE or Unigram) trained on the demo corpus. Deterministic:
    the same (family, seed) gives byte-identical files. Writes ``out_dir`` directly (callers that
    need atomicity wrap it in :func:`ptmbench.io.provenance.atomic_dir`).
    """
    import torch
    from transformers import AutoModel

    fam = family(family_name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = fam.tokenizer()
    config = fam.config(tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModel.from_config(config)
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
