"""The validator: decodes lines, runs the rule table (rules.py) and the reorder buffer (reorder.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from acme_telemetry.times import ms_of_iso
from acme_telemetry.validate.reorder import ReorderBuffer
from acme_telemetry.validate.report import Report, Violation
from acme_telemetry.validate.rules import RULE_NAMES, CrossState, Entry, Event, Messages, entry, stages

_Checks = tuple[tuple[tuple[str, Callable[..., Messages], str | None], ...], ...]


class Validator:
    """Feed lines with feed(); call finish() for the report. Sources are checked in feed order."""

    def __init__(self, max_violations: int | None = None) -> None:
        self.report = Report()
        self._sessions: dict[str, ReorderBuffer] = {}
        self._cross = CrossState()
        self._max = max_violations
        self._event_stages: _Checks = stages("event")
        self._pair_stages: _Checks = stages("pair")
        # Rules are pure functions: the common case (all hold) runs them in one tight loop,
        # and only an event or pair that fails one is checked again stage by stage to report.
        self._event_checks = tuple(check for stage in self._event_stages for _, check, _ in stage)
        self._pair_checks = tuple(check for stage in self._pair_stages for _, check, _ in stage)
        self._cross_checks = tuple(check for stage in stages("cross") for _, check, _ in stage)
        self._cross_names = tuple(name for stage in stages("cross") for name, _, _ in stage)

    # -- reporting
    def _v(self, source: str, line: int, rule: str, message: str, event: Event | None = None) -> None:
        if rule not in RULE_NAMES:
            raise KeyError(f"violation of an unregistered rule {rule!r}")
        if self._max is None or len(self.report.violations) < self._max:
            self.report.violations.append(Violation(source, line, rule, message, event))
        else:
            self.report.violations.append(Violation(source, line, rule, message))  # count only

    def _found(self, src: str, no: int, rule: str, msg: str | list[str], e: Event) -> None:
        if isinstance(msg, str):
            self._v(src, no, rule, msg, e)
        else:
            for m in msg:
                self._v(src, no, rule, m, e)

    # -- the reorder buffer's sink
    def pair(self, prev: Entry, cur: Entry, at: Entry) -> None:
        """Run the pair rules on two consecutive events of a session."""
        for check in self._pair_checks:
            if check(prev, cur) is not None:
                break
        else:
            return
        for stage in self._pair_stages:
            ok = True
            for name, check, _ in stage:
                msg = check(prev, cur)
                if msg is not None:
                    ok = False
                    self._found(at.source, at.line, name, msg, at.event)
            if not ok:
                return

    def violation(self, rule: str, message: str, at: Entry) -> None:
        self._v(at.source, at.line, rule, message, at.event)

    def duplicate(self) -> None:
        self.report.duplicates += 1

    # -- one source
    def feed(self, source: str, lines: Iterable[bytes], lake: bool) -> None:
        self.report.files += 1
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        check_event, session_event = self._check_event, self._session_event
        for no, raw in enumerate(lines, 1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                e = loads(raw)
            except decode_error as exc:
                self._v(source, no, "json", f"not JSON: {exc}")
                continue
            if not isinstance(e, dict):
                self._v(source, no, "not-object", f"a JSON {type(e).__name__}, not an object")
                continue
            self.report.events += 1
            if check_event(source, no, e):
                session_event(source, no, e, hash(raw), lake)
            # else: the event is broken; session rules would only repeat it

    def _check_event(self, src: str, no: int, e: Event) -> bool:
        """The event rules, stage by stage; True when all hold."""
        for check in self._event_checks:
            if check(e) is not None:
                break
        else:
            return True
        for stage in self._event_stages:
            failed: set[str] | None = None
            for name, check, unless in stage:
                if failed is not None and unless in failed:
                    continue
                msg = check(e)
                if msg is not None:
                    if failed is None:
                        failed = set()
                    failed.add(name)
                    self._found(src, no, name, msg, e)
            if failed is not None:
                return False
        raise AssertionError("an event rule failed once and then held")  # rules must be pure

    def _session_event(self, src: str, no: int, e: Event, h: int, lake: bool) -> None:
        ts = ms_of_iso(e["event_timestamp"])
        item = entry(e, src, no, h, ts if ts is not None else 0)
        sid = e["session_id"]
        buf = self._sessions.get(sid)
        if buf is None:
            self._sessions[sid] = ReorderBuffer(item)
            self.report.sessions += 1
            for name, check in zip(self._cross_names, self._cross_checks, strict=True):
                msg = check(self._cross, e)
                if msg is not None:
                    self._found(src, no, name, msg, e)
            return
        buf.add(item, lake, self)

    def finish(self) -> Report:
        for sid, buf in self._sessions.items():
            for message in buf.gaps(sid):
                self._v("(end of input)", 0, "seq", message)
        return self.report
