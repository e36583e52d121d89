"""Preference data: collation conventions, HH-style files (offline and through `datasets`), pair construction."""

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rlhf_core import task
from rlhf_core.data import (
    HH_SAMPLE_PATH,
    collate_pairs,
    collate_prompts,
    collate_sft,
    encode_example,
    join_prompt_response,
    load_preference_dataset,
    load_preference_file,
    pairs_by_reward,
    pairs_dataset,
    pairs_from_samples,
    pairs_vs_reference_samples,
    sample_responses,
    split_hh_transcript,
)
from rlhf_core.model import ModelConfig, TinyLM
from rlhf_core.tokenizer import WordTokenizer


@pytest.fixture(scope="module")
def tok():
    return WordTokenizer.for_task()


def test_a_sequence_is_bos_prompt_response_eos_and_the_mask_covers_response_and_eos(tok):
    ids, mask = encode_example(tok, "the film was", "great .")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "the film was great ."
    assert mask == [0, 0, 0, 0, 1, 1, 1]


def test_collate_pairs_pads_chosen_and_rejected_to_one_length_on_the_right(tok):
    rows = [{"prompt": "the film was", "chosen": "great .", "rejected": "dull and slow . it was bad ."},
            {"prompt": "honestly , the plot felt", "chosen": "very clever and fun .", "rejected": "weak ."}]
    batch = collate_pairs(rows, tok)
    shapes = {k: tuple(v.shape) for k, v in batch.items()}
    assert len(set(shapes.values())) == 1 and len(shapes) == 6
    for side in ("chosen", "rejected"):
        ids, att, resp = (batch[f"{side}_{p}"] for p in ("input_ids", "attention_mask", "response_mask"))
        for b, row in enumerate(rows):
            n = int(att[b].sum())
            assert att[b, :n].all() and not att[b, n:].any()  # right padding
            assert (ids[b, n:] == tok.pad_id).all()
            assert ids[b, n - 1] == tok.eos_id
            assert tok.decode(ids[b][resp[b].bool()]) == row[side]
            assert not (resp[b].bool() & ~att[b].bool()).any()
    # the prompt part of chosen and rejected is identical
    p_len = 1 + len(tok.encode(rows[0]["prompt"]))
    assert torch.equal(batch["chosen_input_ids"][0, :p_len], batch["rejected_input_ids"][0, :p_len])


def test_collate_rejects_sequences_longer_than_max_length(tok):
    with pytest.raises(ValueError, match="max_length"):
        collate_pairs([{"prompt": "the film was", "chosen": "great .", "rejected": "bad ."}], tok, max_length=4)


def test_collate_sft_marks_response_tokens(tok):
    batch = collate_sft([{"prompt": "the film was", "response": "great ."}], tok)
    assert batch["response_mask"].tolist() == [[0, 0, 0, 0, 1, 1, 1]]


def test_prompts_for_sampling_are_left_padded(tok):
    ids, mask = collate_prompts(["the film was", "to be honest , the plot felt"], tok)
    assert mask[:, -1].all() and (ids[:, -1] != tok.pad_id).all()
    assert mask[0, 0] == 0 and ids[0, mask[0].argmax()] == tok.bos_id


def test_join_prompt_response_masks_only_the_sampled_tokens(tok):
    ids, mask = collate_prompts(["the film was", "honestly , the film was"], tok)
    responses = torch.tensor([[tok.encode("great")[0], tok.eos_id, tok.pad_id], tok.encode("dull and bad")])
    joined = join_prompt_response(ids, mask, responses, tok.pad_id)
    assert joined["response_mask"][0, -3:].tolist() == [1, 1, 0]
    assert joined["response_mask"][1, -3:].tolist() == [1, 1, 1]
    assert joined["response_mask"][:, : ids.shape[1]].sum() == 0
    assert torch.equal(joined["attention_mask"][:, : ids.shape[1]], mask)


def test_pairs_dataset_has_the_schema_and_rejects_rows_without_it():
    ds = pairs_dataset([{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert set(ds.column_names) == {"prompt", "chosen", "rejected"} and len(ds) == 1
    with pytest.raises(ValueError, match="lacks the text column"):
        pairs_dataset([{"prompt": "p", "chosen": "a"}])


def test_split_hh_transcript_keeps_earlier_turns_in_the_prompt():
    prompt = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and then?\n\nAssistant:"
    p, c, r = split_hh_transcript(prompt + " it was fine", prompt + " it was not")
    assert p == prompt and c == "it was fine" and r == "it was not"
    with pytest.raises(ValueError, match="Assistant"):
        split_hh_transcript("no dialogue here", "none here either")


def test_the_shipped_hh_sample_loads_offline():
    ds = load_preference_file(HH_SAMPLE_PATH)
    assert len(ds) == 6
    assert all(row["prompt"].endswith("Assistant:") for row in ds)
    assert ds[3]["prompt"].count("Human:") == 2  # a two-turn dialogue keeps its first turn in the prompt
    assert ds[0]["chosen"] == "the film was great . the acting felt very clever ."


def test_json_list_files_and_prompt_rows(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([{"prompt": "the film was", "chosen": "great .", "rejected": "bad ."}]))
    assert load_preference_file(path)[0] == {"prompt": "the film was", "chosen": "great .", "rejected": "bad ."}


def test_malformed_files_give_a_clear_error(tmp_path):
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{not json}\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        load_preference_file(bad_line)
    wrong_keys = tmp_path / "keys.jsonl"
    wrong_keys.write_text('{"question": "a", "answer": "b"}\n')
    with pytest.raises(ValueError, match="row 0 has neither"):
        load_preference_file(wrong_keys)


def test_the_hub_path_goes_through_datasets_load_dataset(tmp_path, monkeypatch):
    # the online path (a dataset name) tested against a local dataset folder, fully offline
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "hh-like"
    folder.mkdir()
    (folder / "train.jsonl").write_text(HH_SAMPLE_PATH.read_text())
    ds = load_preference_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 6 and ds[0] == load_preference_file(HH_SAMPLE_PATH)[0]


def test_an_unreachable_hub_name_is_one_clear_error(tmp_path, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the libraries read those variables when imported: set what they read, so no request waits on a timeout
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(RuntimeError, match="could not load the preference dataset"):
        load_preference_dataset("someone/no-such-dataset", cache_dir=str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_model(tok):
    torch.manual_seed(0)
    return TinyLM(ModelConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64)).eval()


def test_pairs_by_reward_put_the_higher_reward_first_and_drop_ties(tiny_model, tok):
    ds = pairs_by_reward(tiny_model, tok, list(task.TRAIN_PROMPTS[:6]), n_samples=4, seed=3)
    assert 0 < len(ds) <= 6
    for row in ds:
        assert row["chosen_reward"] > row["rejected_reward"]
        assert task.reward(row["chosen"]) == row["chosen_reward"]
    assert len(pairs_by_reward(tiny_model, tok, list(task.TRAIN_PROMPTS[:6]), reward_fn=lambda text: 0.0)) == 0


def test_the_writeup_construction_keeps_the_dataset_response_as_chosen(tiny_model, tok):
    rows = task.make_corpus(5, seed=1)
    ds = pairs_vs_reference_samples(tiny_model, tok, rows, seed=0)
    assert [r["chosen"] for r in ds] == [r["response"] for r in rows]
    assert all(r["prompt"] == src["prompt"] for r, src in zip(ds, rows))


# groups of 2-5 samples per prompt, rewards from a few values so that ties are common
_groups = st.integers(2, 5).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), min_size=n, max_size=n),
                         min_size=1, max_size=4)))


def _scored_samples(n, groups):
    prompts = [f"prompt {g}" for g in range(len(groups))]
    samples = [f"sample {g}.{j}" for g in range(len(groups)) for j in range(n)]
    rewards = {f"sample {g}.{j}": r for g, group in enumerate(groups) for j, r in enumerate(group)}
    return prompts, samples, rewards


@given(_groups)
def test_all_pairing_gives_every_untied_pair_of_a_group_with_the_higher_reward_chosen(data):
    n, groups = data
    prompts, samples, rewards = _scored_samples(n, groups)
    ds = pairs_from_samples(prompts, samples, n, reward_fn=rewards.__getitem__, pairing="all")
    for g, (prompt, group) in enumerate(zip(prompts, groups)):
        rows = [r for r in ds if r["prompt"] == prompt]
        ties = sum(group[a] == group[b] for a in range(n) for b in range(a + 1, n))
        assert len(rows) == math.comb(n, 2) - ties
        expected = {(f"sample {g}.{a}", f"sample {g}.{b}") for a in range(n) for b in range(n) if group[a] > group[b]}
        assert {(r["chosen"], r["rejected"]) for r in rows} == expected
        for r in rows:
            assert r["chosen_reward"] == rewards[r["chosen"]] > r["rejected_reward"] == rewards[r["rejected"]]


@given(_groups)
def test_best_worst_pairing_keeps_its_one_pair_per_prompt_last_best_vs_first_worst(data):
    # the default that the shipped data and lessons 08-09 depend on, pinned: ties at the top go to the
    # last such sample, ties at the bottom to the first (a stable sort by reward), tied groups give nothing
    n, groups = data
    prompts, samples, rewards = _scored_samples(n, groups)
    ds = pairs_from_samples(prompts, samples, n, reward_fn=rewards.__getitem__)
    assert list(ds) == list(pairs_from_samples(prompts, samples, n, reward_fn=rewards.__getitem__, pairing="best_worst"))
    expected = []
    for g, (prompt, group) in enumerate(zip(prompts, groups)):
        if max(group) > min(group):
            best = max(j for j in range(n) if group[j] == max(group))
            worst = min(j for j in range(n) if group[j] == min(group))
            expected.append({"prompt": prompt, "chosen": f"sample {g}.{best}", "rejected": f"sample {g}.{worst}",
                             "chosen_reward": max(group), "rejected_reward": min(group)})
    assert list(ds) == expected


def test_pairs_by_reward_builds_both_pairings_from_the_same_samples(tiny_model, tok):
    prompts = list(task.TRAIN_PROMPTS[:8])
    default = pairs_by_reward(tiny_model, tok, prompts, n_samples=4, seed=5)
    samples = sample_responses(tiny_model, tok, prompts, 4, seed=5)
    assert list(default) == list(pairs_from_samples(prompts, samples, 4))    # best_worst is what it always was
    every = pairs_by_reward(tiny_model, tok, prompts, n_samples=4, seed=5, pairing="all")
    assert list(every) == list(pairs_from_samples(prompts, samples, 4, pairing="all"))
    assert len(every) > len(default)
    for prompt in prompts:
        rows = [r for r in every if r["prompt"] == prompt]
        assert len(rows) <= math.comb(4, 2)
        best_worst = [r for r in default if r["prompt"] == prompt]
        if best_worst:              # the best-vs-worst pair is the widest of the prompt's pairs
            assert best_worst[0]["chosen_reward"] - best_worst[0]["rejected_reward"] == max(
                r["chosen_reward"] - r["rejected_reward"] for r in rows)
        else:
            assert rows == []       # all four samples tie


def test_reward_pairs_passes_its_pairing_through_to_the_same_samples(tiny_model, tok):
    from rlhf_core.recipes import reward_pairs

    prompts = list(task.TRAIN_PROMPTS[:4])
    every = reward_pairs(tiny_model, tok, prompts, groups_per_prompt=2, seed=3, pairing="all")
    assert every == list(pairs_by_reward(tiny_model, tok, prompts * 2, n_samples=4, seed=3, pairing="all"))
    assert len(every) > len(reward_pairs(tiny_model, tok, prompts, groups_per_prompt=2, seed=3))


def test_an_unknown_pairing_or_a_wrong_number_of_samples_is_refused(tiny_model, tok):
    with pytest.raises(ValueError, match="pairing must be one of"):
        pairs_by_reward(tiny_model, tok, ["the film was"], pairing="adjacent")
    with pytest.raises(ValueError, match="pairing must be one of"):
        pairs_from_samples(["the film was"], ["great .", "bad ."], 2, pairing="best-worst")
    with pytest.raises(ValueError, match="expected 2 samples for each of 1 prompts"):
        pairs_from_samples(["the film was"], ["great ."], 2)
