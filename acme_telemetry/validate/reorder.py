"""The reorder buffer: one session's events put back in seq order, duplicates told apart.

A session's events must come in order (Kafka keeps one session on one partition). In a
plain file they are checked in file order: a gap or an event out of order is a `seq`
violation and any repeated seq a `duplicate`. In a lake folder (at-least-once, objects in
path order) an event that arrives ahead of a missing one waits in the buffer until the
events between arrive, an exact duplicate (byte-identical line) is tolerated and counted,
and a differing one is a `duplicate`; what never arrives is reported by `gaps()`.

The buffer keeps the session's lowest and highest events checked so far, the hashes of
the lines between (8 bytes per event: exact duplicate checks) and what waits. It checks
nothing itself: each event it places next to its neighbour goes to `sink.pair`.
"""

from __future__ import annotations

from array import array
from typing import Protocol

from acme_telemetry.validate.rules import Entry


class Sink(Protocol):
    """Where the buffer sends what it finds."""

    def pair(self, prev: Entry, cur: Entry, at: Entry) -> None:
        """Two consecutive events of the session; violations are reported at `at`."""

    def violation(self, rule: str, message: str, at: Entry) -> None: ...

    def duplicate(self) -> None:
        """An exact duplicate in a lake folder, tolerated."""


class ReorderBuffer:
    """One session's checked range [low, high] plus the events waiting beyond it."""

    __slots__ = ("low", "high", "base", "hashes", "pending_high", "pending_low")

    def __init__(self, first: Entry) -> None:
        self.low = self.high = first
        self.base: int = first.event["seq"]  # seq of hashes[0]
        self.hashes = array("q", [first.hash])
        self.pending_high: dict[int, Entry] = {}
        self.pending_low: dict[int, Entry] = {}

    def add(self, item: Entry, lake: bool, sink: Sink) -> None:
        """Place one more event of the session (see the module doc)."""
        e = item.event
        seq: int = e["seq"]
        lo: int = self.low.event["seq"]
        hi: int = self.high.event["seq"]
        if lo <= seq <= hi:
            seen = self.hashes[seq - self.base]
            if seen == item.hash:
                if lake:
                    sink.duplicate()
                else:
                    sink.violation("duplicate", f"seq {seq} repeated (exact duplicates are tolerated only in a lake folder)", item)
            elif seen == 0:
                sink.violation("seq", f"seq {seq} arrived after the gap it was missing from was reported", item)
            else:
                sink.violation("duplicate", f"seq {seq} seen before with different content", item)
            return
        if lake and (seq > hi + 1 or seq < lo - 1):
            pending = self.pending_high if seq > hi else self.pending_low
            waiting = pending.get(seq)
            if waiting is None:
                pending[seq] = item  # waits for the events between
            elif waiting.hash == item.hash:
                sink.duplicate()
            else:
                sink.violation("duplicate", f"seq {seq} seen before with different content", item)
            return
        if seq > hi:
            if seq > hi + 1:
                sink.violation("seq", f"seq {seq} follows seq {hi}: {seq - hi - 1} missing", item)
            self._extend(item, sink)
            while self.pending_high and (self.high.event["seq"] + 1) in self.pending_high:
                self._extend(self.pending_high.pop(self.high.event["seq"] + 1), sink)
        elif lake:
            self._extend(item, sink)
            while self.pending_low and (self.low.event["seq"] - 1) in self.pending_low:
                self._extend(self.pending_low.pop(self.low.event["seq"] - 1), sink)
        else:
            sink.violation("seq", f"seq {seq} arrived after seq {hi} (out of order)", item)

    def _extend(self, item: Entry, sink: Sink) -> None:
        """Add an event just above the session's highest or just below its lowest."""
        seq = item.event["seq"]
        if seq > self.high.event["seq"]:
            sink.pair(self.high, item, item)
            self.high = item
            while len(self.hashes) < seq - self.base:
                self.hashes.append(0)  # a gap (plain files only)
            self.hashes.append(item.hash)
        else:
            sink.pair(item, self.low, item)
            self.low = item
            self.hashes = array("q", [item.hash]) + self.hashes
            self.base = seq

    def gaps(self, session_id: str) -> list[str]:
        """`seq` messages for the events still waiting: the ones between never arrived."""
        out = []
        lo, hi = self.low.event["seq"], self.high.event["seq"]
        if self.pending_high:
            first = min(self.pending_high)
            out.append(
                f"session {session_id}: seq {hi + 1}..{first - 1} never arrived; {len(self.pending_high)} events after the gap unchecked"
            )
        if self.pending_low:
            first = max(self.pending_low)
            out.append(
                f"session {session_id}: seq {first + 1}..{lo - 1} never arrived; {len(self.pending_low)} events before the gap unchecked"
            )
        return out
