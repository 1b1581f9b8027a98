"""knowledge/bert.py and knowledge/tokenizer.py against transformers: the same numbers from
the same weights, the same ids, masks, offsets and tokens from the same tokenizer.json."""
import copy
import threading

import pytest
import torch

from conftest import ROOT
from knowledge.bert import Bert, BertConfig
from knowledge.embedding import resolve_model
from knowledge.tokenizer import FastTokenizer

MINILM = resolve_model("all-MiniLM-L6-v2")
READER = ROOT / "rag" / "models" / "reader"
TEXTS = ["Which NFL team represented the AFC at Super Bowl 50?", "  padded  ", "x", "",
         "a long passage, cut where the limit says " * 60, "Ünïcödé — text", "北京是中国的首都。",
         "emoji 🙂 and\ttabs\nand lines", "Crème brûlée, ﬁ ligatures and Ⅻ numerals",
         "don't stop-believing!! (1,234.5 km²)", "\u00a0non-breaking\u200bzero-width"]


@pytest.fixture(scope="module")
def hf_minilm():
    from transformers import BertModel

    return BertModel.from_pretrained(MINILM, add_pooling_layer=False).eval()


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_states_are_transformers_own(hf_minilm, attention, dtype):
    """Every token's last hidden state, padded batch or single text, bit for bit."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MINILM)
    hf = copy.deepcopy(hf_minilm).to(dtype)
    hf.set_attn_implementation(attention)
    mine = Bert.load(MINILM, dtype, attention)
    assert mine.dtype == dtype
    for batch in (TEXTS, TEXTS[:1], TEXTS[4:5]):
        enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            theirs = hf(**enc).last_hidden_state
            ours = mine(enc["input_ids"], enc["attention_mask"])
        real = enc["attention_mask"].bool()
        assert torch.equal(ours[real], theirs[real])


def test_parameter_names_are_transformers_own(hf_minilm):
    """A reader's frozen weights point at the embedder's by these names (share_parameters)."""
    mine = dict(Bert.load(MINILM).named_parameters())
    theirs = dict(hf_minilm.named_parameters())
    assert mine.keys() == theirs.keys()
    assert all(mine[n].shape == theirs[n].shape for n in mine)


@pytest.mark.parametrize("change", [
    {"model_type": "roberta"}, {"hidden_act": "relu"}, {"is_decoder": True},
    {"position_embedding_type": "relative_key"}, {"hidden_size": None}])
def test_other_configs_are_refused(change):
    import json

    config = json.loads((MINILM / "config.json").read_text())
    assert BertConfig.of(config) is not None
    config.update(change)
    if change == {"hidden_size": None}:
        del config["hidden_size"]
    assert BertConfig.of(config) is None


def test_weights_named_otherwise_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    (tmp_path / "config.json").write_text((MINILM / "config.json").read_text())
    state = load_file(str(MINILM / "model.safetensors"))
    save_file({f"bert.{k}": v for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    assert Bert.load(tmp_path) is None


@pytest.mark.parametrize("model_dir", [MINILM, READER], ids=["minilm", "reader"])
def test_tokenizer_is_transformers_own(model_dir):
    """Ids, masks and character offsets of padded, truncated batches, and tokens, as
    transformers' tokenizer gives them (the reader's tokenizer.json was saved with padding
    and truncation settings of its own: they do not leak in)."""
    from transformers import AutoTokenizer

    theirs, ours = AutoTokenizer.from_pretrained(model_dir), FastTokenizer.load(model_dir)
    for limit in (8, 256, 512):
        want = theirs(TEXTS, max_length=limit, truncation=True, padding="longest",
                      return_offsets_mapping=True, return_tensors="pt")
        got = ours(TEXTS, max_length=limit, truncation=True, padding="longest",
                   return_offsets_mapping=True, return_tensors="pt")
        assert set(got) == {"input_ids", "attention_mask", "offset_mapping"}
        for key in got:
            assert torch.equal(got[key], want[key]), (limit, key)
    assert [ours.tokenize(t) for t in TEXTS] == [theirs.tokenize(t) for t in TEXTS]
    assert ours.pad_token_id == theirs.pad_token_id


def test_tokenizer_serves_threads_with_different_limits():
    """The embedder encodes from several threads at once: each truncation length has its
    own tokenizer, so none changes under another ("Already borrowed" in the library)."""
    tok = FastTokenizer.load(MINILM)
    errors, lengths = [], {}

    def run(limit):
        try:
            for _ in range(30):
                lengths[limit] = tok(TEXTS, max_length=limit, truncation=True, padding=True,
                                     return_tensors="pt")["input_ids"].shape[1]
        except Exception as err:  # noqa: BLE001  (what a thread raised, checked below)
            errors.append(err)

    threads = [threading.Thread(target=run, args=(n,)) for n in (16, 64, 128, 256)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and lengths == {16: 16, 64: 64, 128: 128, 256: 256}


def test_no_tokenizer_json_means_none(tmp_path):
    assert FastTokenizer.load(tmp_path) is None
    (tmp_path / "tokenizer.json").write_text("{not json")
    assert FastTokenizer.load(tmp_path) is None
