"""Red flags in a written explanation: one scanner, the same for every drill variant.

A red flag is an interviewer's judgement that a sentence states something false about the paper ("DPO runs PPO on
the policy"). Each :class:`~rlhf_core.course.variants.Variant` lists its own :class:`RedFlag` phrases; this module
decides, for every phrase it finds, whether the sentence *asserts* it of the paper's method. A strong candidate
names the very things the method removes, so a phrase is not a flag where it stands

- under a negation: "no", "not", "never", "without", "nor", "does not need", "instead of", "rather than", "replaces",
  "removes", "avoids", "skips"… ("DPO needs no reward model and no PPO loop");
- in a contrast or a comparison: "unlike", "than", "compared with", "whereas", "as opposed to", "the same objective
  as RLHF with PPO" ("Unlike RLHF with PPO, DPO needs no reward model");
- in a clause whose subject is another method: RLHF, PPO, InstructGPT, SFT, or another paper of the drill ("RLHF
  trains a reward model, then runs PPO against it"; "it" and "then…" carry that subject on);
- after it, in its clause, as what is removed: "the PPO stage is gone", "PPO-free", "what DPO replaces";
- in a condition: "if the reference were updated, …".

A negation or a contrast reaches to the end of its clause, through a list ("does not need PPO, rollouts, or a value
function"), and stops where a new subject or a new verb starts ("Without any reward model, DPO still needs rollouts"
keeps its flag; so does "DPO has no reward model and runs PPO"). Each flag found quotes the sentence that raised it
(:class:`RaisedFlag`). Where the scanner cannot tell, it does not flag: a false red flag teaches a candidate to stop
naming what the method replaces, which is worse than a missed one. ``tests/test_red_flags.py`` measures it on a
corpus of correct and wrong explanations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["RedFlag", "RaisedFlag", "scan_explanation", "split_sentences", "METHOD_NAMES"]


@dataclass(frozen=True)
class RedFlag:
    """A phrase that signals a misunderstanding: ``pattern`` (a regex, matched on the lower-cased sentence; the
    claim it names comes last in the match), ``flag`` (what it signals), ``why`` (what is true instead),
    ``example`` (a sentence that raises it)."""

    pattern: str
    flag: str
    why: str
    example: str


class RaisedFlag(tuple):
    """A red flag found in an explanation. It unpacks as ``(flag, instead)`` and compares as that pair;
    ``sentence`` quotes the sentence that raised it ("" for a flag raised by the learner's code)."""

    sentence: str

    def __new__(cls, flag: str, instead: str, sentence: str = "") -> RaisedFlag:
        self = super().__new__(cls, (flag, instead))
        self.sentence = sentence
        return self

    def __getnewargs__(self) -> tuple[str, str, str]:   # copy and pickle keep the quote
        return (self[0], self[1], self.sentence)

    @property
    def flag(self) -> str:
        return self[0]

    @property
    def instead(self) -> str:
        return self[1]

    def __repr__(self) -> str:
        return f"RaisedFlag({self[0]!r}, {self[1]!r}, sentence={self.sentence!r})"


#: Methods an explanation may name besides the paper's own, other than the drill's papers (each variant's scan adds
#: the other variants' ``names``).
METHOD_NAMES: tuple[str, ...] = (
    r"rlhf", r"reinforcement learning from human feedback", r"ppo", r"proximal policy optimi[sz]ation", r"instructgpt",
    r"rl", r"reinforcement learning", r"reinforce", r"actor-critic", r"sft", r"supervised fine-tuning", r"kto",
    r"slic", r"rso", r"robust dpo", r"rdpo", r"online (?:dpo|rl|variants?|methods?|versions?)", r"iterative dpo",
    r"(?:the |a )?(?:rl|two-stage|three-stage|standard|usual|classic|classical|rlhf) pipeline", r"the baseline",
)

_ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|et al|vs|cf|resp|approx|eq|fig|sec)\.", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")

# where a clause ends (a new one starts with the word after) and where a part of it does (commas, dashes)
_SEPARATOR = re.compile(r"(?P<hard>[;:]|\s(?=(?:but|yet|however|although|though|whereas|whilst|while|so that)\b))"
                        r"|(?P<soft>,|\s[—–-]\s|—|–)")
_LEADING = re.compile(r"^(?:\s+|(?:and|but|yet|so|then|thus|hence|therefore|also|however|although|though|first(?:ly)?|"
                      r"second(?:ly)?|third(?:ly)?|finally|next|instead|in short|in practice|in other words|that is|"
                      r"here|now|overall|still|while|whilst|whereas|where|when|because|since|after that|afterwards|"
                      r"by contrast|in contrast|in turn|only|just)\b)+")
_DETERMINERS = (r"(?:(?:the|a|an|its|their|standard|classic(?:al)?|traditional|usual|conventional|vanilla|plain|"
                r"ordinary|typical|original|full|canonical|instructgpt-style)\s+){0,3}")
# a finite verb for sure (a new clause starts with it after a comma or an "and")
_FINITE = (r"(?:is|are|was|were|has|have|had|does|do|did|will|would|must|can|could|should|may|might|needs|requires|"
           r"trains|learns|optimi[sz]es|computes|relies|treats|maximi[sz]es|minimi[sz]es|applies|performs|replaces|"
           r"removes|avoids|skips|divides|compares|regresses|assumes)")
_ADVERB = r"(?:still|then|also|simply|directly|only|just)"
# a verb after a subject: the finite ones, or any third-person or past form
_VERB = (rf"(?:{_FINITE}|{_ADVERB}|uses|runs|fits|samples|updates|keeps|adds|takes|makes|gets|gives|need|use|run|"
         r"train|fit|require|sample|optimi[sz]e|learn|compute|keep|rely|estimate|generate|collect|score|"
         r"[a-z-]+(?:es|ed|s)(?<!ss)(?<!us)(?<!is))")
_APPOSITION = r"(?:usually|typically|often|normally|commonly|mostly|generally|e\.g\.|i\.e\.|such as|namely)"
_PREPOSITION = (r"(?:like|unlike|as|than|from|with|without|in|of|for|by|over|under|compared|versus|vs|instead|rather|"
                r"no|not|if|whether)")
_PRONOUN = re.compile(r"^(?:it|they|this|these|those|the latter|the former|both|its|their)\b")
_FIRST_PERSON = re.compile(r"^(?:we|you|one|i)\b")
# words that open a scope in which a phrase is not asserted of the paper's method
_NEGATION = (r"\bno\b(?!,)|\bnot\b|\bnever\b|\bnothing\b|\bnone\b|\bwithout\b|\bnor\b|\bneither\b|n't\b|\bno longer\b|\bfree of\b|"
             r"\binstead of\b|\brather than\b|\bin place of\b|\bunnecessary\b|"
             r"\b(?:replac|remov|eliminat|avoid|skip|bypass|sidestep|dispens|obviat|circumvent|abandon|omit|"
             r"discard|ditch|drop)\w*|\bcuts? out\b|\bdo(?:es|ing)? away with\b|\bget(?:s|ting)? rid of\b|"
             r"\bimplicit\w*|\bsecretly\b")
_CONTRAST = (r"\bunlike\b|\bthan\b|\bcompared (?:with|to)\b|\bin contrast (?:to|with)\b|\bas opposed to\b|"
             r"\bversus\b|\bvs\b|\bwhereas\b|\bwhile\b|\bwhilst\b")
_CONDITION = r"\bif\b|\bunless\b|\bsuppose\b|\bimagine\b|\bwere\b|\bwould\b"
_AFTER = re.compile(r"^(?:-?(?:free|less)\b|[^,;:]{0,40}?\b(?:(?:is|are|was|were|gets?|becomes?|being)\s+(?:\w+\s+){0,2}?"
                    r"(?:gone|removed|unnecessary|unneeded|not\b|never\b|no longer|dropped|eliminated|replaced|"
                    r"avoided|skipped|bypassed|absent|obsolete|redundant|folded|subsumed|implicit)|"
                    r"disappears?|goes away|drops out|falls away|vanish\w*|implicitly|becomes|turns into|"
                    r"reduces to|collapses into|what \w+ (?:removes|drops|replaces|eliminates|avoids|skips)))")
_GAP = re.compile(r"\[\^\.;\]\*\??")


def split_sentences(explanation: str) -> list[str]:
    """The sentences of an explanation: paragraphs at blank lines, wrapped lines joined, a bullet its own sentence,
    then a split after ``.``, ``!`` or ``?`` (not after "e.g.", "et al.", …)."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", explanation or ""):
        items: list[str] = []
        for line in paragraph.splitlines():
            if _BULLET.match(line) or not items:
                items.append(_BULLET.sub("", line))
            else:
                items[-1] += " " + line.strip()
        for item in items:
            protected = _ABBREVIATIONS.sub(lambda m: m.group(1) + "\x00", item.strip())
            sentences += [s.replace("\x00", ".").strip() for s in _SENTENCE_END.split(protected) if s.strip()]
    return sentences


@dataclass
class _Part:
    start: int
    end: int
    foreign: bool     # the subject of the part is another method


class _Reading:
    """One sentence read for the scanner: its clauses, their parts and subjects, and the scopes that excuse.

    Brackets are read as asides: blanked in ``flat`` (what the clauses, subjects and scopes are read on), and a
    phrase inside them is judged by its own bracket's words and by the clause around it."""

    def __init__(self, text: str, own: re.Pattern, foreign: re.Pattern, foreign_topic: bool):
        self.text = text
        self.own, self.foreign_re = own, foreign
        self.brackets = [(m.start(), m.end()) for m in re.finditer(r"\([^()]*\)?", text)]
        self.flat = re.sub(r"\([^()]*\)?", lambda m: " " * len(m.group()), text)
        self.parts: list[_Part] = []
        self.closers: list[int] = []      # positions where a negation or contrast scope ends
        self.clause_ends: list[int] = []
        self._read(foreign_topic)

    # ---- structure -------------------------------------------------------------------------------------------

    def _subject(self, lead: str) -> str | None:
        """"own", "foreign", "pronoun" or None for the start of a part (after its leading discourse words)."""
        if _PRONOUN.match(lead):
            return "pronoun"
        if _FIRST_PERSON.match(lead):
            return "own"
        for kind, names in (("own", self.own), ("foreign", self.foreign_re)):
            if re.match(rf"^(?:in|for|under|during)\s+{_DETERMINERS}(?:{names.pattern})", lead):
                return kind                     # "In RLHF, …": the clause is about RLHF
            if re.match(rf"^{_DETERMINERS}(?:[\w-]+\s+){{0,2}}?(?:{names.pattern})(?:'s(?:\s[\w-]+){{1,2}}|\s[\w-]+){{0,2}}?\s+{_VERB}\b",
                        lead):
                return kind
        return None

    def _named(self, lead: str) -> str | None:
        """"own" or "foreign" for a part that is only a method's name ("The original RLHF recipe"), else None."""
        for kind, names in (("own", self.own), ("foreign", self.foreign_re)):
            if re.match(rf"^{_DETERMINERS}(?:(?!{_PREPOSITION}\b)[\w-]+\s+){{0,2}}?(?:{names.pattern})(?:\s[\w-]+)?$",
                        lead):
                return kind
        return None

    def _read(self, foreign_topic: bool) -> None:
        flat, pos, foreign = self.flat, 0, foreign_topic
        pieces: list[tuple[int, int, str]] = []      # start, end, the separator before
        before = "hard"
        for m in _SEPARATOR.finditer(flat):
            pieces.append((pos, m.start(), before))
            if m.group("hard"):
                self.clause_ends.append(m.start())
            before = "hard" if m.group("hard") else "soft"
            pos = m.end()
        pieces.append((pos, len(flat), before))
        self.clause_ends.append(len(flat))
        foreign_before, pending = False, None
        for start, end, sep in pieces:
            piece = re.sub(r"\s+", " ", flat[start:end])
            lead = _LEADING.sub("", piece).strip()
            subject = self._subject(lead)
            if subject in ("own", "foreign"):
                foreign = subject == "foreign"
            elif re.match(r"^(?:which|who|that)\b", lead) and foreign_before:
                foreign = True                  # "…than PPO, which needs rollouts"
            if re.match(rf"^(?:{_APPOSITION})?\s*{_DETERMINERS}(?:{self.foreign_re.pattern})\W*$", lead):
                self.parts.append(_Part(start, end, True))      # "…, usually PPO, …": a name, not a claim
                foreign_before = True
                continue
            if pending is not None and subject is None and re.match(rf"^{_VERB}\b", lead):
                foreign = pending == "foreign"   # "The original RLHF recipe, from InstructGPT, fits …"
            named = self._named(lead) if subject is None else None
            if named or not re.match(rf"^{_PREPOSITION}\b", lead):
                pending = named                 # a bracket-like "…, from InstructGPT, …" keeps it
            if sep == "soft" and (subject is not None or re.match(rf"^(?:{_FINITE}|{_ADVERB}|which|who)\b", lead)):
                self.closers.append(start)      # a new subject or verb: a negation before it stops here
            for m in re.finditer(rf"\band\s+(?=(?:{_ADVERB}\s+)?(?:{_FINITE}|runs|uses|fits|keeps|takes|gets|makes|adds|it|we|they)\b)", flat[start:end]):
                self.closers.append(start + m.start())
            self.parts.append(_Part(start, end, foreign))
            foreign_before = foreign or bool(re.search(rf"(?:{self.foreign_re.pattern})\W*$", piece))

    @property
    def foreign_at_end(self) -> bool:
        """Whether the sentence ends on another method's subject (what "It …" in the next sentence refers to)."""
        return bool(self.parts) and self.parts[-1].foreign

    # ---- judgement --------------------------------------------------------------------------------------------

    def _clause_start(self, at: int) -> int:
        return max([0] + [end + 1 for end in self.clause_ends if end < at])

    def _comparison(self) -> str:
        """A comparison with another method: "like RLHF", "as RLHF with PPO", "against 57% for PPO"."""
        return (rf"\b(?:like|as(?:\s+(?:in|with))?|from|over|what|for|against|above|below)\s+{_DETERMINERS}"
                rf"(?:{self.foreign_re.pattern})")

    def _openers(self, text: str, offset: int, kinds: str = "") -> list[int]:
        found = []
        for m in re.finditer(kinds or rf"{_NEGATION}|{_CONTRAST}|{_CONDITION}|{self._comparison()}", text):
            found.append(offset + m.start())
            if m.group().startswith("replac"):     # "replaces X with Y": Y is what the method does
                then = re.search(r"\b(?:with|by)\b", text[m.end():])
                if then:
                    self.closers.append(offset + m.end() + then.start())
        return found

    def asserted(self, match: re.Match) -> bool:
        """Whether the phrase ``match`` found is asserted of the paper's method (see the module's docstring)."""
        start, end = match.span()
        at = end - 1
        bracket = next(((s, e) for s, e in self.brackets if s <= at < e), None)
        anchor = bracket[0] if bracket else at             # where the phrase sits in the flat sentence
        part = next((p for p in self.parts if p.start <= anchor <= p.end), self.parts[-1])
        if part.foreign:
            return False
        # the words that can excuse: before the phrase in its clause, and in the phrase's free gaps ("simpo … unlike
        # dpo with its reference model"), never the phrase's own words ("discards the noisy pairs")
        clause = self._clause_start(min(start, anchor))
        openers = self._openers(self.flat[clause:min(start, anchor)], clause)
        for name, value in match.groupdict().items():
            if name.startswith("gap") and value is not None:
                openers += self._openers(self.text[match.start(name):match.end(name)], match.start(name))
        if bracket:
            openers += self._openers(self.text[bracket[0]:start], bracket[0])
        # a comparison may end on the phrase itself: "… against 57% for PPO"
        openers += self._openers(self.text[clause:end], clause, self._comparison())
        if any(not any(o < c <= anchor for c in self.closers) for o in openers):
            return False
        clause_end = min([e for e in self.clause_ends if e >= anchor] + [len(self.text)])
        after = self.text[end:bracket[1] if bracket else clause_end]
        of_another = rf"^\s*(?:[\w-]+\s+)?(?:of|in|from|used by)\s+{_DETERMINERS}(?:{self.foreign_re.pattern})"
        return not (_AFTER.match(after) or re.match(of_another, after))   # "the RL step in RLHF"


def _matches(pattern: str, text: str) -> Iterator[re.Match]:
    """Every match of ``pattern`` in ``text`` with a distinct end: a greedy ``a[^.;]*b`` is tried on each ``b``. Each
    gap ``[^.;]*`` of the pattern is a named group ``gap<i>``, so that the judgement can tell it from the claim."""
    counter = iter(range(1000))
    pattern = _GAP.sub(lambda m: f"(?P<gap{next(counter)}>{m.group()})", pattern)
    limit = len(text)
    while limit > 0:
        last = None
        for m in re.finditer(pattern, text[:limit]):
            last = m
        if last is None or last.end() == 0:
            return
        yield last
        limit = last.end() - 1


def _names(alternatives: Sequence[str]) -> re.Pattern:
    ordered = sorted(alternatives, key=len, reverse=True)     # "conservative dpo" before "dpo"
    return re.compile(r"(?:" + "|".join(rf"\b{a}\b" for a in ordered) + r")")


def scan_explanation(flags: Sequence[RedFlag], own_names: Sequence[str], explanation: str,
                     other_names: Sequence[str] = ()) -> list[RaisedFlag]:
    """The ``flags`` asserted in ``explanation`` of the method called ``own_names`` (regexes, lower case), in the
    order of ``flags``, each once, quoting the first sentence that raised it. ``other_names`` are other methods the
    explanation may contrast it with, besides :data:`METHOD_NAMES`. See the module's docstring."""
    own = _names(own_names)
    foreign = _names([n for n in (*METHOD_NAMES, *other_names) if not any(re.fullmatch(o, n) for o in own_names)])
    found: dict[str, RaisedFlag] = {}
    foreign_topic = False
    for sentence in split_sentences(explanation):
        lowered = sentence.lower()
        carries = bool(re.match(r"^(?:it|they|this|these|its|their|then|next|after that|afterwards|finally|"
                                r"second(?:ly)?|third(?:ly)?|the latter|both)\b", lowered))
        reading = _Reading(lowered, own, foreign, foreign_topic and carries)
        for flag in flags:
            if flag.flag not in found and any(reading.asserted(m) for m in _matches(flag.pattern, lowered)):
                found[flag.flag] = RaisedFlag(flag.flag, flag.why, sentence)
        foreign_topic = reading.foreign_at_end
    return [found[f.flag] for f in flags if f.flag in found]
