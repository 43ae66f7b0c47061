"""The reorder buffer alone: one session's events back in seq order, duplicates told apart."""

from __future__ import annotations

from acme_telemetry.validate.reorder import ReorderBuffer
from acme_telemetry.validate.rules import Entry


class Recorder:
    def __init__(self) -> None:
        self.pairs: list[tuple[int, int]] = []
        self.violations: list[tuple[str, int]] = []
        self.duplicates = 0

    def pair(self, prev: Entry, cur: Entry, at: Entry) -> None:
        self.pairs.append((prev.event["seq"], cur.event["seq"]))

    def violation(self, rule: str, message: str, at: Entry) -> None:
        self.violations.append((rule, at.event["seq"]))

    def duplicate(self) -> None:
        self.duplicates += 1


def _e(seq: int, h: int | None = None) -> Entry:
    return Entry({"seq": seq}, (), seq * 1000, (), "src", seq + 1, h if h is not None else 1000 + seq)


def _run(seqs, lake, hashes=None):
    sink = Recorder()
    hashes = hashes or {}
    buf = ReorderBuffer(_e(seqs[0], hashes.get(0)))
    for i, s in enumerate(seqs[1:], 1):
        buf.add(_e(s, hashes.get(i)), lake, sink)
    return buf, sink


def test_in_order_pairs_each_neighbour_once():
    buf, sink = _run([0, 1, 2, 3], lake=False)
    assert sink.pairs == [(0, 1), (1, 2), (2, 3)] and not sink.violations and buf.gaps("s") == []


def test_lake_waits_for_the_missing_event_then_pairs_in_order():
    buf, sink = _run([0, 3, 2, 1], lake=True)
    assert sink.pairs == [(0, 1), (1, 2), (2, 3)] and not sink.violations and buf.gaps("s") == []


def test_lake_reorders_below_the_first_seen_event_too():
    _, sink = _run([2, 0, 1], lake=True)
    assert sink.pairs == [(1, 2), (0, 1)] and not sink.violations


def test_lake_reports_what_never_arrived():
    buf, sink = _run([0, 1, 4, 5], lake=True)
    assert sink.pairs == [(0, 1)]
    assert buf.gaps("s") == ["session s: seq 2..3 never arrived; 2 events after the gap unchecked"]


def test_plain_file_gap_and_out_of_order_are_seq_violations():
    _, sink = _run([0, 2, 1], lake=False)
    assert sink.violations == [("seq", 2), ("seq", 1)]
    assert sink.pairs == [(0, 2)]


def test_exact_duplicate_tolerated_in_a_lake_only_and_a_differing_one_never():
    same = {2: 1001}  # the third line repeats seq 1 byte for byte (same hash)
    _, sink = _run([0, 1, 1], lake=True, hashes=same)
    assert sink.duplicates == 1 and not sink.violations
    _, sink = _run([0, 1, 1], lake=False, hashes=same)
    assert sink.violations == [("duplicate", 1)] and sink.duplicates == 0
    _, sink = _run([0, 1, 1], lake=True, hashes={2: 99})
    assert sink.violations == [("duplicate", 1)]
    # a waiting event redelivered: exact is tolerated, differing is not
    _, sink = _run([0, 3, 3, 3], lake=True, hashes={2: 1003, 3: 7})
    assert sink.duplicates == 1 and sink.violations == [("duplicate", 3)]
