"""The simulator on the wall clock: a stream from time T is the tail of the one stream, so a
restart at a later time replays nothing and repeats no event_id; incidents degrade one slice
and recover, in the events and in the GroundTruth, and change nothing outside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from acme_telemetry import kpis
from acme_telemetry.simulator import GroundTruth, SimConfig, iter_window
from acme_telemetry.simulator.incidents import IncidentError, parse_incident
from acme_telemetry.simulator.live import event_ms, iter_live, iter_since, resume_from
from acme_telemetry.times import to_ms

A = datetime(2026, 12, 1, 6, 50, tzinfo=UTC)
A_MS = to_ms(A)


def test_a_stream_since_t_is_the_tail_of_the_window_stream():
    cfg = SimConfig(seed=4, concurrent_viewers=300)
    whole = list(iter_window(cfg, A, A + timedelta(minutes=3)))
    t = A_MS + 61_234
    tail = []
    for rec in iter_since(cfg, t):
        if event_ms(rec[1]) >= A_MS + 180_000:
            break
        tail.append(rec)
    assert tail == [r for r in whole if event_ms(r[1]) >= t]


def test_a_restart_resumes_without_replay_or_duplicate_event_ids():
    cfg = SimConfig(seed=4, concurrent_viewers=300)
    clock = [A_MS + 5000]

    def run(since, until):
        out = []
        for batch in iter_live(cfg, since, now_ms=lambda: clock[0]):
            out.extend(batch)
            if clock[0] >= until:
                break
            clock[0] += 1000
        return out

    first = run(A_MS, A_MS + 30_000)  # the first run, stopped ("Ctrl-C") 30 s in
    assert all(ts <= A_MS + 30_000 for _, _, ts in first)
    clock[0] += 7000  # down for 7 s
    second = run(resume_from(clock[0], max(ts for _, _, ts in first)), A_MS + 60_000)
    ids = [orjson.loads(v)["event_id"] for _, v, _ in first + second]
    assert len(ids) == len(set(ids)) and len(second) > 500
    assert min(ts for _, _, ts in second) > max(ts for _, _, ts in first)
    assert resume_from(100, 150) == 151 and resume_from(200, 150) == 200 and resume_from(5, None) == 5


def test_parse_incident_relative_absolute_and_errors():
    inc = parse_incident("cdn=fastly,at=+2m,for=3m,kind=outage", A_MS)
    assert (inc.dimension, inc.value, inc.start_ms - A_MS, inc.end_ms - inc.start_ms, inc.kind) == (
        "cdn",
        "fastly",
        120_000,
        180_000,
        "outage",
    )
    assert parse_incident("state=CA,at=2026-12-01T07:00:00Z,for=90s,kind=rebuffer", 0).start_ms == A_MS + 600_000
    for bad, msg in (
        ("cdn=B,at=+2m", "not in the population"),
        ("cdn=fastly,isp=Cox", "exactly one slice"),
        ("cdn=fastly,kind=meteor", "kind="),
        ("cdn=fastly,for=soon", "for="),
        ("fastly", "key=value"),
        ("cdn=fastly,colour=red", "unknown key"),
    ):
        with pytest.raises(IncidentError, match=msg):
            parse_incident(bad, A_MS)


@pytest.fixture(scope="module")
def outage_run():
    inc = parse_incident("cdn=fastly,at=+3m,for=3m,kind=outage", A_MS)
    cfg = SimConfig(seed=6, concurrent_viewers=1500, incidents=(inc,))
    truth = GroundTruth(keep_events=True)
    recs = list(iter_window(cfg, A, A + timedelta(minutes=9), truth=truth))
    return inc, cfg, recs, truth


def test_an_outage_degrades_its_slice_and_recovers_in_the_ground_truth(outage_run):
    inc, _, _, truth = outage_run
    assert truth.incidents == [inc]
    before, during, after = (truth.window(A_MS + a * 60_000, A_MS + b * 60_000) for a, b in ((0, 3), (3, 6), (6, 9)))

    def failures(t, cdn):
        tally = t.by["cdn"][cdn]
        return tally.video_start_failures + tally.playback_failures, tally.play_attempts

    f0, _ = failures(before, "fastly")
    f1, att = failures(during, "fastly")
    f2, _ = failures(after, "fastly")
    assert f1 > 10 * max(f0, 1) and f1 > 50 and att > 30
    assert during.by["cdn"]["fastly"].expected()["video_start_failure_pct"] > 40
    assert f2 < f1 / 5, "the slice recovers once the incident ends"
    for other in ("akamai", "cloudfront"):
        assert failures(during, other)[0] < f1 / 10, other


def test_the_kpis_see_the_outage_in_the_cdn_breakdown(outage_run):
    inc, _, recs, _ = outage_run
    wins, _ = kpis.split_by_window([orjson.loads(v) for _, v in recs], 60_000)
    during = kpis.rolling(w for s, w in wins.items() if inc.start_ms <= s < inc.end_ms)
    before = kpis.rolling(w for s, w in wins.items() if s < inc.start_ms)
    assert during is not None and before is not None
    d, b = during.kpis(during.by["cdn"]["fastly"]), before.kpis(before.by["cdn"]["fastly"])
    assert d["video_start_failure_pct"] > 40 > 5 > b["video_start_failure_pct"]
    assert d["playback_failures"] > 10 * max(1, b["playback_failures"])
    ok = during.kpis(during.by["cdn"]["akamai"])
    assert ok["video_start_failure_pct"] < 10


def test_an_incident_changes_nothing_outside_its_slice(outage_run):
    _, cfg, recs, _ = outage_run
    plain = list(iter_window(SimConfig(seed=6, concurrent_viewers=1500), A, A + timedelta(minutes=9)))
    assert plain != recs

    def not_fastly(rs):
        return [v for _, v in rs if b'"cdn":"fastly"' not in v]

    assert not_fastly(plain) == not_fastly(recs)
