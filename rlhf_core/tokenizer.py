"""A word-level tokenizer: one id per word of a fixed vocabulary.

The task's language is small and already split into words (punctuation included, see
:mod:`rlhf_core.task`), so a tokenizer only has to number the words.

Conventions
-----------
* Ids ``0, 1, 2, 3`` are the special tokens ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; the words
  follow from id 4, in the order given to the constructor (``for_task`` uses the sorted
  ``task.VOCAB``).
* ``<bos>`` starts a prompt and ``<eos>`` ends a response: a training sequence is
  ``<bos> prompt words response words <eos>``, and generation stops at ``<eos>``.
* ``<pad>`` (id 0) fills batches of unequal length on the right; losses mask it out.
* ``encode`` splits on whitespace; a word outside the vocabulary becomes ``<unk>`` (id 3).
* ``decode(ids, skip_special=True)`` drops ``<pad>``, ``<bos>`` and ``<eos>`` wherever they occur
  (it does not stop at ``<eos>``) and joins the words with single spaces. ``<unk>`` is *kept*, as
  the text ``"<unk>"``: it stands where a word was, and dropping it could make a broken sample
  look grammatical.

>>> tok = WordTokenizer(["the", "film", "was", "good", "."])
>>> tok.encode("the film was great", add_bos=True)
[1, 4, 5, 6, 3]
>>> tok.decode([1, 4, 5, 6, 7, 8, 2, 0])
'the film was good .'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["WordTokenizer"]


class WordTokenizer:
    """Maps words to ids and back; see the module docstring for the conventions."""

    PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
    SPECIALS = (PAD, BOS, EOS, UNK)

    def __init__(self, words: Sequence[str]):
        words = list(words)
        seen: set[str] = set()
        for w in words:
            if not isinstance(w, str) or not w or w != w.strip() or len(w.split()) != 1:
                raise ValueError(f"a word must be a non-empty string without whitespace: {w!r}")
            if w in self.SPECIALS:
                raise ValueError(f"{w!r} is a special token and cannot be a word")
            if w in seen:
                raise ValueError(f"duplicate word {w!r}")
            seen.add(w)
        self._id_to_token: list[str] = [*self.SPECIALS, *words]
        self._token_to_id: dict[str, int] = {t: i for i, t in enumerate(self._id_to_token)}
        self.pad_id = self._token_to_id[self.PAD]
        self.bos_id = self._token_to_id[self.BOS]
        self.eos_id = self._token_to_id[self.EOS]
        self.unk_id = self._token_to_id[self.UNK]
        self._skip = frozenset((self.pad_id, self.bos_id, self.eos_id))

    # ----------------------------------------------------------------------------- inspection
    @property
    def vocab_size(self) -> int:
        """Number of ids: 4 specials plus the words."""
        return len(self._id_to_token)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def words(self) -> tuple[str, ...]:
        """The words, without the specials, in id order (ids 4, 5, ...)."""
        return tuple(self._id_to_token[len(self.SPECIALS) :])

    def token_to_id(self, token: str) -> int:
        """The id of a word or special token; ``unk_id`` if unknown."""
        return self._token_to_id.get(token, self.unk_id)

    def id_to_token(self, i: int) -> str:
        """The word or special token of an id; raises ``IndexError`` outside the vocabulary."""
        i = int(i)
        if not 0 <= i < self.vocab_size:
            raise IndexError(f"id {i} outside the vocabulary (size {self.vocab_size})")
        return self._id_to_token[i]

    def __contains__(self, token: object) -> bool:
        return token in self._token_to_id

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"

    # ------------------------------------------------------------------------- encode/decode
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Ids of the whitespace-separated words of ``text`` (unknown words -> ``unk_id``)."""
        ids = [self._token_to_id.get(w, self.unk_id) for w in text.split()]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Text of ``ids`` (a list of ints or a 1-D tensor/array), words joined by single spaces.

        With ``skip_special`` the ``<pad>``, ``<bos>`` and ``<eos>`` ids are dropped (all of them,
        wherever they are); ``<unk>`` is always kept.
        """
        if hasattr(ids, "tolist"):  # torch.Tensor, numpy.ndarray
            ids = ids.tolist()
        if isinstance(ids, int):
            raise ValueError("decode expects a sequence of ids, got a single int / 0-D tensor")
        tokens = []
        for i in ids:
            if isinstance(i, (list, tuple)):
                raise ValueError("decode expects a 1-D sequence of ids; decode each row separately")
            i = int(i)
            if skip_special and i in self._skip:
                continue
            tokens.append(self.id_to_token(i))
        return " ".join(tokens)

    # ---------------------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {"type": "WordTokenizer", "specials": list(self.SPECIALS), "words": list(self.words)}

    @classmethod
    def from_dict(cls, d: dict) -> WordTokenizer:
        specials = d.get("specials", list(cls.SPECIALS))
        if list(specials) != list(cls.SPECIALS):
            raise ValueError(f"unexpected special tokens {specials!r}; expected {list(cls.SPECIALS)!r}")
        return cls(d["words"])

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> WordTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordTokenizer) and self._id_to_token == other._id_to_token

    def __hash__(self) -> int:
        return hash(tuple(self._id_to_token))

    # --------------------------------------------------------------------------------- task
    @classmethod
    def for_task(cls) -> WordTokenizer:
        """The tokenizer over :data:`rlhf_core.task.VOCAB` (sorted, so ids are stable)."""
        from . import task

        return cls(task.VOCAB)
