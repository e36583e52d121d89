"""The drill's clock, red-flag reader and scorecard, and the history of attempts."""

import json
import re

import pytest
import torch.nn.functional as F

from rlhf_core import dpo_loss, implicit_reward
from rlhf_core.checks import check_dpo_loss
from rlhf_core.course.drill import Drill, drill_history, format_minutes, red_flags_in, start_drill
from rlhf_core.toy import toy_dpo_step


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_blocks_are_timed_until_the_next_begins():
    clock = FakeClock()
    drill = Drill(started=clock(), clock=clock)
    drill.begin("read")
    clock.now += 14 * 60
    drill.begin("explain")
    clock.now += 7 * 60
    drill.begin("implement")
    clock.now += 60
    times = {name: spent for name, _, spent in drill.block_times()}
    assert times == {"read": 14 * 60, "explain": 7 * 60, "implement": 60, "sanity-check": None}
    assert "over budget" not in drill.status_line()
    clock.now += 31 * 60
    assert "over budget" in drill.status_line() and "53:00 elapsed" in drill.status_line()


def test_check_records_and_reraises_with_the_elapsed_time(capsys):
    drill = Drill()
    drill.check("dpo_loss", check_dpo_loss, dpo_loss)

    def no_ref(pc, pr, rc, rr, beta=0.1):
        return -F.logsigmoid(beta * (pc - pr)).mean()

    with pytest.raises(AssertionError, match="drop log π_ref"):
        drill.check("dpo_loss", check_dpo_loss, no_ref)
    out = capsys.readouterr().out
    assert out.count("elapsed of 60:00") == 2
    assert not drill.checks["dpo_loss"].passed


@pytest.mark.parametrize("text, flag", [
    ("We run PPO with rollouts and a value head.", "PPO"),
    ("First we train a reward model on the pairs, then optimise.", "reward model"),
    ("DPO samples from the policy during training.", "online"),
])
def test_red_flags_are_found(text, flag):
    flags = red_flags_in(text)
    assert flags and flag.lower() in flags[0][0].lower()


def test_describing_the_rlhf_baseline_is_not_a_red_flag():
    text = "Standard RLHF trains a reward model, then runs PPO against it. DPO skips both stages."
    assert red_flags_in(text) == []
    assert red_flags_in("DPO, like RLHF, trains a reward model first.")  # a claim about DPO still counts


def test_negated_mentions_are_not_red_flags():
    text = ("DPO needs no reward model and no PPO loop. It is offline, without rollouts; "
            "the reward model is never trained.")
    assert red_flags_in(text) == []


@pytest.mark.slow
def test_scorecard_reflects_a_correct_drill(capsys):
    card = Drill().scorecard({}, "A supervised loss on fixed pairs against a frozen reference.",
                             dpo_loss=dpo_loss, implicit_reward=implicit_reward, toy_step=toy_dpo_step)
    assert all(r.passed for r in card["sanity"]) and all(ok for ok, _ in card["checks"].values())
    assert card["red_flags"] == []
    assert "The six sanity checks: 6/6" in capsys.readouterr().out


def test_scorecard_shows_a_wrong_loss_its_hints_and_the_red_flag(capsys):
    def no_ref(pc, pr, rc, rr, beta=0.1):
        return -F.logsigmoid(beta * (pc - pr)).mean()

    def stub(*a, **k):
        raise NotImplementedError

    card = Drill().scorecard({}, "We use PPO.", dpo_loss=no_ref, implicit_reward=implicit_reward, toy_step=stub)
    out = capsys.readouterr().out
    assert "✗ 1." in out and "reference term" in out
    assert "✗ check_dpo_loss" in out and "drop log π_ref" in out
    assert "not run: training the toy policy" in out
    assert [f for f, _ in card["red_flags"]] == ["described a PPO / RL loop", "forgot the reference term in the loss"]


def test_start_drill_keeps_the_clock_unless_restarted(capsys):
    clock = FakeClock()
    first = start_drill(restart=True, clock=clock)
    clock.now += 90
    assert start_drill(clock=clock) is first and "1:30 elapsed" in capsys.readouterr().out
    assert start_drill(restart=True, clock=clock) is not first
    assert format_minutes(754.4) == "12:34"


# ------------------------------------------------------------------------------------------------
# progress over attempts: card.save() and drill_history()


def _finished_drill(clock, loss=dpo_loss):
    drill = Drill(started=clock(), clock=clock)
    for block, minutes in (("read", 12), ("explain", 6), ("implement", 25), ("sanity-check", 9)):
        drill.begin(block)
        clock.now += minutes * 60
    return drill.scorecard({}, "DPO trains a policy with one loss, no PPO.", dpo_loss=loss,
                           implicit_reward=implicit_reward, print_it=False)


def test_a_saved_attempt_is_one_json_line_and_a_markdown_card(tmp_path, capsys):
    card = _finished_drill(FakeClock())
    assert isinstance(card, dict) and set(card) == {"sanity", "checks", "blocks", "rubric", "red_flags", "diagnosis"}
    where = card.save(tmp_path / "hist")
    lines = (where / "history.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["blocks"] == {"read": 720.0, "explain": 360.0, "implement": 1500.0, "sanity-check": 540.0}
    assert record["total_seconds"] == 3120.0 and record["variant"] == "dpo"
    assert record["checks"] == {"dpo_loss": True, "implicit_reward": True}
    assert len(record["sanity"]) == 6 and record["red_flags"] == []
    (md,) = where.glob("attempt-*.md")
    assert "DRILL SCORECARD" in md.read_text() and "history.jsonl" in capsys.readouterr().out


def test_the_history_shows_every_attempt_in_order_and_what_each_got(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RLHF_DRILL_HISTORY", str(tmp_path / "env-history"))
    clock = FakeClock()
    _finished_drill(clock).save()

    def no_ref(pc, pr, rc, rr, beta=0.1):
        return -F.logsigmoid(beta * (pc - pr)).mean()

    _finished_drill(clock, loss=no_ref).save()
    capsys.readouterr()
    records = drill_history(plot=False)
    out = capsys.readouterr().out
    assert [r["checks"]["dpo_loss"] for r in records] == [True, False]
    assert "forgot the reference term in the loss" in records[1]["red_flags"]
    assert " 1  " in out and " 2  " in out and "12:00" in out and "variants done: dpo" in out
    assert "forgot the reference term" in out


def test_an_unreadable_history_line_is_skipped_with_a_note_and_an_empty_history_says_so(tmp_path, capsys):
    assert drill_history(tmp_path / "none", plot=False) == []
    assert "No saved attempts" in capsys.readouterr().out
    where = _finished_drill(FakeClock()).save(tmp_path / "h")
    with open(where / "history.jsonl", "a") as fh:
        fh.write("{not json\n" + json.dumps({"unrelated": 1}) + "\n")
    capsys.readouterr()
    assert len(drill_history(where, plot=False)) == 1
    out = capsys.readouterr().out
    assert "line 2 of" in out and "line 3 of" in out and "skipped" in out


def test_the_history_plot_has_one_bar_stack_and_one_point_per_attempt(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from rlhf_core.course.drill import BLOCKS
    from rlhf_core.plots import plot_drill_history

    clock = FakeClock()
    records = [_finished_drill(clock).record(), _finished_drill(clock).record()]
    fig = plot_drill_history(records, BLOCKS)
    left, right = fig.axes
    assert len(left.patches) == 2 * len(BLOCKS)
    assert all(len(line.get_xdata()) == 2 for line in right.get_lines())
    assert [t.get_text() for t in left.get_xticklabels()] == ["1\ndpo", "2\ndpo"]


def test_a_history_folder_that_cannot_be_written_is_explained_not_raised(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert _finished_drill(FakeClock()).save(blocker / "history") is None
    assert "Could not save this attempt" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# the scorecard and the history as a notebook shows them (HTML tables) and as a terminal does (text)

from html.parser import HTMLParser  # noqa: E402

_VOID = {"br", "hr", "img", "meta", "input", "col"}


class _Blocks(HTMLParser):
    """Checks that every tag closes in order, and collects the text of each row, paragraph and heading."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.blocks, self.problems = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag not in _VOID:
            self.stack.append(tag)
        if tag in ("tr", "p", "h3", "h4"):
            self.blocks.append("")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.blocks:
            self.blocks[-1] += " " + data


def _parse(html: str) -> _Blocks:
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    assert parser.problems == [] and parser.stack == [], (parser.problems, parser.stack)
    return parser


_NOISE = {"⚠", "—", "of", "you", "wrote", "=" * 15}


def _tokens(line: str) -> set[str]:
    """The words of a line; a verdict's own "✗ sanity check N —" is what the HTML row's mark and number columns say."""
    line = re.sub(r"✗ sanity check \d+ — ", "", line)
    return {t.strip(".:,()“”").lower() for t in line.split()} - _NOISE - {""}


def _unmatched_rows(text: str, blocks: list[str]) -> list[str]:
    """The lines of the text form whose words no single row, paragraph or heading of the HTML holds."""
    words = [_tokens(b) for b in blocks]
    return [line for line in text.splitlines() if _tokens(line) and not any(_tokens(line) <= w for w in words)]


def _wrong_card():
    def no_ref(pc, pr, rc, rr, beta=0.1):
        return -F.logsigmoid(beta * (pc - pr)).mean()

    clock = FakeClock()
    drill = Drill(started=clock(), clock=clock)
    for block, minutes in (("read", 17), ("explain", 6)):
        drill.begin(block)
        clock.now += minutes * 60
    return drill.scorecard({drill.rubric_items[0]: True, drill.rubric_items[1]: False},
                           "We run PPO with <b>tag</b> rollouts & a value head.",
                           dpo_loss=no_ref, implicit_reward=implicit_reward, toy_step=toy_dpo_step, print_it=False)


def test_the_scorecard_html_is_well_formed_and_holds_every_row_of_the_text():
    card = _wrong_card()
    parsed = _parse(card._repr_html_())
    assert _unmatched_rows(card.text, parsed.blocks) == []
    html = card._repr_html_()
    assert "<b>tag</b>" not in html and "&lt;b&gt;tag&lt;/b&gt;" in html      # the learner's words are escaped
    assert "⏱" not in html and "⚠" not in html                              # only ✓ ✗ ? – as symbols
    assert html.count("<table") == 5                                          # blocks, sanity, stronger, rubric, flags


def test_the_scorecard_text_still_reads_in_a_terminal():
    card = _wrong_card()
    assert str(card) == card.text and card.text.startswith("DRILL SCORECARD")
    printed = []

    class Printer:
        def text(self, s):
            printed.append(s)

    card._repr_pretty_(Printer(), False)
    assert printed == [card.text]
    assert "  ✗ 1. loss at initialisation" in card.text and "over budget" in card.text
    assert card.text.splitlines()[-1].startswith("This run is an attempt (dpo_loss implemented")


def test_the_history_html_is_well_formed_and_holds_every_row_of_the_text(tmp_path):
    from rlhf_core.course.drill_history import HistoryTable, read_history

    clock = FakeClock()
    _finished_drill(clock).save(tmp_path)

    def no_ref(pc, pr, rc, rr, beta=0.1):
        return -F.logsigmoid(beta * (pc - pr)).mean()

    _finished_drill(clock, loss=no_ref).save(tmp_path)
    records, problems = read_history(tmp_path)
    table = HistoryTable(records, tmp_path, problems)
    parsed = _parse(table._repr_html_())
    assert _unmatched_rows(str(table), parsed.blocks) == []
    assert "<th" in table._repr_html_() and table._repr_html_().count("<tr") == 3
    header, *rows = str(table).splitlines()[:3]
    assert "sanity  checks  counts  red flags" in header               # no header split across columns
    for row in rows:                                                   # every row lines up under the header
        assert row[header.index("counts"):].startswith("yes")


def test_an_empty_history_shows_a_sentence_in_both_forms(tmp_path):
    from rlhf_core.course.drill_history import HistoryTable

    table = HistoryTable([], tmp_path)
    assert "No saved attempts" in str(table) and "No saved attempts" in table._repr_html_()
    _parse(table._repr_html_())
