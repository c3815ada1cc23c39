"""Tiny randomly initialised encoders of many architectures, with working tokenizers (the ``tiny`` source).

One :class:`Family` per architecture in :data:`FAMILIES`: how its tokenizer is made (a kind of
vocabulary, WordPiece, byte-level BPE or Unigram, trained on :func:`ptmbench.data.schemas.corpus`, put into the
family's own tokenizer class) and how its config is made from :data:`TINY_SIZE` and the tokenizer.
Tokenizers that are Python classes reading vocabulary files (FlauBERT's Moses + BPE, Japanese BERT's
MeCab + WordPiece) get their files written to a temporary folder first; the Japanese and Chinese
vocabularies also hold the words or characters of a few Japanese / Chinese sentences
(:data:`JAPANESE_SAMPLE`, :data:`CHINESE_SAMPLE`), so text in those languages tokenises to real pieces.
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


# A few sentences the Japanese and Chinese tiny vocabularies are also made of (the demo corpus is English).
JAPANESE_SAMPLE = ("この映画はとても面白かった。", "東京は日本の首都です。", "彼は昨日図書館で本を読んだ。",
                   "私は毎朝コーヒーを飲みます。")
CHINESE_SAMPLE = ("这部电影非常好看。", "北京是中国的首都。", "他昨天在图书馆看书。", "我每天早上喝咖啡。")


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


def _vocab_of(special, chars, words) -> dict[str, int]:
    tokens = list(dict.fromkeys([*special, *chars, *("##" + c for c in chars), *words]))
    return {t: i for i, t in enumerate(tokens[:TINY_SIZE["vocab"]])}


def chinese_vocab() -> dict[str, int]:
    """The uncased WordPiece vocabulary of :func:`wordpiece_vocab` with every character of
    :data:`CHINESE_SAMPLE` (BERT's tokenizer splits CJK ideographs into single characters: the
    character tokenisation of bert-base-chinese)."""
    base = wordpiece_vocab()
    han = sorted({c for line in CHINESE_SAMPLE for c in line})  # ideographs and the full-width stop
    keep = [t for t in base if t not in han][:TINY_SIZE["vocab"] - len(han)]
    tokens = [*keep[:len(BERT_SPECIAL)], *han, *keep[len(BERT_SPECIAL):]]
    return {t: i for i, t in enumerate(tokens)}


def mecab_words(lines) -> dict[str, int]:
    """Word counts of ``lines`` split by MeCab with the IPA dictionary (fugashi + ipadic: the word
    tokenizer of the Japanese BERT models, BertJapaneseTokenizer's ``word_tokenizer_type: mecab``)."""
    from transformers.models.bert_japanese.tokenization_bert_japanese import MecabTokenizer

    mecab = MecabTokenizer(mecab_dic="ipadic")
    counts: dict[str, int] = {}
    for line in lines:
        for word in mecab.tokenize(line):
            counts[word] = counts.get(word, 0) + 1
    return counts


def japanese_vocab() -> dict[str, int]:
    """Cased WordPiece vocabulary over MeCab words of the demo corpus and :data:`JAPANESE_SAMPLE`: the
    special tokens, every character (word-initial and '##'), every word, most frequent first."""
    counts = mecab_words([*data.corpus(), *JAPANESE_SAMPLE])
    chars = sorted({c for w in counts for c in w} | set(string_alphabet()))
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    return _vocab_of(BERT_SPECIAL, chars, words)


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


XLM_SPECIAL = ("<s>", "</s>", "<pad>", "<unk>", *(f"<special{i}>" for i in range(10)))


def xlm_bpe_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Cased BPE of the XLM / FlauBERT kind: words split by Moses (French rules), pieces ending a word
    marked ``</w>``; (vocab, merges), :data:`XLM_SPECIAL` first (ids 0-13 as in FlauBERT's vocabulary).

    Learned here, not by the tokenizers BPE trainer (which numbers characters in hash order, so its
    merges change between runs): repeatedly merge the most frequent adjacent pair of the corpus words,
    ties to the smallest pair, until the vocabulary is full or no pair occurs twice."""
    from sacremoses import MosesTokenizer

    moses = MosesTokenizer(lang="fr")
    counts: dict[tuple[str, ...], int] = {}
    for line in data.corpus():
        for word in moses.tokenize(line, escape=False):
            key = (*word[:-1], word[-1] + "</w>")
            counts[key] = counts.get(key, 0) + 1
    chars = sorted({c for c in string_alphabet()} | {sym for w in counts for sym in w}
                   | {c + "</w>" for c in string_alphabet()})
    vocab = [*XLM_SPECIAL, *chars]
    merges: list[tuple[str, str]] = []
    while len(vocab) < TINY_SIZE["vocab"]:
        pairs: dict[tuple[str, str], int] = {}
        for w, n in counts.items():
            for pair in zip(w, w[1:], strict=False):
                pairs[pair] = pairs.get(pair, 0) + n
        if not pairs or max(pairs.values()) < 2:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        vocab.append(best[0] + best[1])
        merged = {}
        for w, n in counts.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        counts = merged
    return {t: i for i, t in enumerate(dict.fromkeys(vocab))}, merges


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


def flaubert_tokenizer() -> Callable:
    """FlauBERT's tokenizer (Moses, then BPE; a Python tokenizer reading vocab.json and merges.txt)."""
    def make():
        import tempfile

        vocab, merges = xlm_bpe_vocab()
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
            (Path(tmp) / "merges.txt").write_text("".join(f"{a} {b}\n" for a, b in merges))
            return _transformers("FlaubertTokenizer")(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                                                      do_lowercase=False, **COMMON)
    return make


def japanese_tokenizer() -> Callable:
    """Japanese BERT's tokenizer: MeCab (IPA dictionary) words, then WordPiece (bert-base-japanese's kind)."""
    def make():
        import tempfile

        vocab = japanese_vocab()
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "vocab.txt").write_text("".join(f"{t}\n" for t in vocab))
            return _transformers("BertJapaneseTokenizer")(
                str(Path(tmp) / "vocab.txt"), do_lower_case=False, word_tokenizer_type="mecab",
                subword_tokenizer_type="wordpiece", mecab_kwargs={"mecab_dic": "ipadic"}, **COMMON)
    return make


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


def flaubert_config(tok):
    """FlauBERT (XLM's architecture): n_layers, n_heads, emb_dim; one language, no language embeddings."""
    s = TINY_SIZE
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("bos_index", "<s>"), ("eos_index", "</s>"),
                                                         ("pad_index", "<pad>"), ("unk_index", "<unk>"),
                                                         ("mask_index", tok.mask_token))}
    return _transformers("FlaubertConfig")(
        vocab_size=len(tok), emb_dim=s["hidden"], n_layers=s["layers"], n_heads=s["heads"],
        max_position_embeddings=MAX_LENGTH, n_langs=1, use_lang_emb=False, pad_token_id=ids["pad_index"],
        bos_token_id=ids["bos_index"], eos_token_id=ids["eos_index"], **ids)


def funnel_base_config(tok):
    """A Funnel Transformer "-base" checkpoint (FunnelBaseModel: the encoder only, no decoder): two blocks
    of one layer, so the sequence is pooled once; three token types (the <cls> token's is 2)."""
    s = TINY_SIZE
    cfg = _transformers("FunnelConfig")(
        vocab_size=len(tok), block_sizes=[1] * s["layers"], block_repeats=[1] * s["layers"], num_decoder_layers=1,
        d_model=s["hidden"], n_head=s["heads"], d_head=s["hidden"] // s["heads"], d_inner=s["intermediate"],
        max_position_embeddings=MAX_LENGTH, type_vocab_size=3, pad_token_id=tok.pad_token_id)
    cfg.architectures = ["FunnelBaseModel"]  # AutoModel then builds (and reloads) the encoder-only model
    return cfg


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
    # architectures of the published unseen models
    "flaubert": Family(flaubert_tokenizer(), flaubert_config, "bpe"),
    "funnel-base": Family(wordpiece_tokenizer("FunnelTokenizer", ("<pad>", "<unk>", "<cls>", "<sep>", "<mask>",
                                                                  "<s>", "</s>")),
                          funnel_base_config, "wordpiece"),
    "bert-japanese": Family(japanese_tokenizer(), bert_like("BertConfig"), "wordpiece"),
    "bert-chinese": Family(lambda: _transformers("BertTokenizer")(vocab=chinese_vocab(), do_lower_case=True,
                                                                  **COMMON),
                           bert_like("BertConfig"), "wordpiece"),
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
