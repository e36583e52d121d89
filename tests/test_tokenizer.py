"""Tests of the word-level tokenizer."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core import task
from rlhf_core.tokenizer import WordTokenizer

WORDS = ["the", "film", "was", "good", "."]


@pytest.fixture(scope="module")
def tok():
    return WordTokenizer.for_task()


def test_special_ids():
    t = WordTokenizer(WORDS)
    assert (t.pad_id, t.bos_id, t.eos_id, t.unk_id) == (0, 1, 2, 3)
    assert [t.id_to_token(i) for i in range(4)] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert t.vocab_size == len(t) == 4 + len(WORDS)
    assert t.encode("the film was good .") == [4, 5, 6, 7, 8]  # words follow in the given order
    assert t.words == tuple(WORDS)


def test_bos_eos():
    t = WordTokenizer(WORDS)
    assert t.encode("the film", add_bos=True) == [1, 4, 5]
    assert t.encode("good .", add_eos=True) == [7, 8, 2]
    assert t.encode("", add_bos=True, add_eos=True) == [1, 2]
    assert t.decode([1, 4, 5, 6, 7, 8, 2, 0, 0]) == "the film was good ."
    assert t.decode([1, 4, 2, 5], skip_special=False) == "<bos> the <eos> film"
    # decode does not stop at <eos>, it only drops the specials
    assert t.decode([4, 2, 5]) == "the film"


def test_unknown_words():
    t = WordTokenizer(WORDS)
    assert t.encode("the movie was great") == [4, 3, 6, 3]
    assert t.encode("The film") == [3, 5]  # case-sensitive
    assert t.decode([4, 3]) == "the <unk>"  # <unk> is kept, so the error stays visible
    assert t.token_to_id("nope") == t.unk_id
    with pytest.raises(IndexError):
        t.decode([len(t)])
    with pytest.raises(IndexError):
        t.decode([-1])


def test_whitespace_split():
    t = WordTokenizer(WORDS)
    assert t.encode("  the\tfilm \n was  ") == [4, 5, 6]


def test_decode_accepts_tensors():
    t = WordTokenizer(WORDS)
    ids = t.encode("the film was good .", add_bos=True, add_eos=True)
    assert t.decode(torch.tensor(ids)) == "the film was good ."
    assert t.decode(torch.tensor(ids, dtype=torch.int32)) == "the film was good ."
    with pytest.raises(ValueError):
        t.decode(torch.tensor([ids, ids]))
    with pytest.raises(ValueError):
        t.decode(torch.tensor(4))


@pytest.mark.parametrize("bad", [["a", "a"], ["<pad>"], ["<eos>", "x"], [""], ["two words"], ["x "]])
def test_constructor_rejects_bad_vocab(bad):
    with pytest.raises(ValueError):
        WordTokenizer(bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(task.VOCAB), max_size=40), st.booleans(), st.booleans())
def test_round_trip(words, bos, eos):
    t = WordTokenizer.for_task()
    text = " ".join(words)
    ids = t.encode(text, add_bos=bos, add_eos=eos)
    assert len(ids) == len(words) + bos + eos
    assert t.unk_id not in ids
    assert all(0 <= i < t.vocab_size for i in ids)
    assert t.decode(ids) == text
    assert t.decode(torch.tensor(ids, dtype=torch.long)) == text
    assert t.encode(t.decode(ids)) == [i for i in ids if i not in (t.bos_id, t.eos_id)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="abcdefgh.,", min_size=1, max_size=6), unique=True, max_size=30))
def test_round_trip_any_vocab(words):
    t = WordTokenizer(words)
    text = " ".join(words)
    assert t.decode(t.encode(text)) == text
    assert t.encode(text) == list(range(4, 4 + len(words)))


def test_save_load_round_trip(tmp_path, tok):
    path = tmp_path / "tok.json"
    tok.save(path)
    loaded = WordTokenizer.load(path)
    assert loaded == tok
    assert loaded.words == tok.words and loaded.vocab_size == tok.vocab_size
    assert json.loads(path.read_text())["words"] == list(task.VOCAB)
    assert WordTokenizer.from_dict(tok.to_dict()) == tok
    assert WordTokenizer(["a", "b"]) != WordTokenizer(["b", "a"])  # order matters
    unsorted = WordTokenizer(["zeta", "alpha", ".", "mid"])
    unsorted.save(path)
    again = WordTokenizer.load(path)
    assert again.words == ("zeta", "alpha", ".", "mid")
    assert again.encode("alpha zeta") == unsorted.encode("alpha zeta") == [5, 4]
    with pytest.raises(ValueError):
        WordTokenizer.from_dict({"specials": ["<s>", "</s>"], "words": ["a"]})


def test_for_task_covers_corpus(tok):
    assert tok.words == task.VOCAB
    assert tok.vocab_size == len(task.VOCAB) + 4
    rows = task.make_corpus(2000, seed=0) + task.make_corpus(300, seed=1, prompts=task.HELDOUT_PROMPTS)
    for row in rows:
        for text in (row["prompt"], row["response"]):
            ids = tok.encode(text)
            assert tok.unk_id not in ids
            assert tok.decode(ids) == text
    for p in task.PROMPTS:
        assert tok.unk_id not in tok.encode(p)
