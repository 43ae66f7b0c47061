"""The viewer simulator: sessions on a player state machine, merged into one time-ordered stream.

Design (why it is coherent, deterministic, window-stable and fast):

* **State is derived, not persisted.** Time is cut into arrival buckets of BUCKET_MS,
  aligned to the Unix epoch. The sessions that start in bucket b, and everything about
  each of them, come from random generators seeded with (seed, b) and (seed, session uid).
  So any process can regenerate any window: the generator Lambda keeps no state between
  invocations. A window [a, b) replays the sessions that started in the MAX_SESSION_MS
  before b (a session is forced to end by its deadline), skipping cheaply those whose
  deadline is before a, and keeps the events with a <= ts < b. Consecutive windows
  therefore concatenate to exactly the one-window stream.
* **A session is one Python generator** holding its player state in fast locals. The
  driver advances every live session to the end of the current bucket, sorts the
  bucket's events by (timestamp, session uid), and formats them. Memory is bounded by
  the live sessions plus one bucket of events, not by the number of events.
* **Formatting is a per-session byte template**: the static fields (customer, device,
  title, network, geography) are JSON-escaped once per session and baked into a bytes
  %-template, so an event costs one `bytes % tuple` of its changing fields.

The player model (CTA-2066 events, CMCD states): start (play attempt) -> first_frame
after a startup time that grows as bandwidth falls, or an exit before video start when
the viewer's patience runs out, or a video start failure. While playing, competing
exponential clocks (re-drawn after every event, which the memoryless property allows)
give pause, seek, rebuffer (hazard grows as bandwidth falls), non-fatal and fatal
errors; heartbeats come every heartbeat interval and move bandwidth on a mean-reverting
log random walk around the connection type's median; ABR picks the highest rung below
70% of bandwidth and switches a moment after the heartbeat that saw the change. The
session ends with complete (title end), stop (intended watch time reached, quit while
paused or stalled, or the deadline) or a fatal error.
"""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from itertools import count
from typing import Iterator

import orjson

from acme_telemetry.schema import ABR_LADDER, DEVICE_OS, UHD_DEVICE_TYPES
from acme_telemetry.simulator import population as pop

BUCKET_MS = 60_000
MAX_SESSION_MS = 5 * 3600 * 1000
DEFAULT_START = datetime(2026, 11, 26, 15, 0, 0, tzinfo=timezone.utc)
_MASK64 = (1 << 64) - 1

# Random-stream tags, so customers, titles, buckets and sessions never share a stream.
_T_CUSTOMER, _T_TITLE, _T_BUCKET, _T_SESSION = 1, 2, 3, 4


class SimConfigError(ValueError):
    """An invalid simulator setting; the message names it."""


@dataclass(frozen=True)
class SimConfig:
    """What to simulate.

    seed: everything derives from it; same config, identical bytes.
    start: where iter_records begins (UTC; naive means UTC). Default 2026-11-26T15:00:00Z,
      fixed so that output never depends on the clock.
    concurrent_viewers: the mean number of live sessions (Little's law sets the arrival
      rate from the mean session lifetime). Load is about viewers / heartbeat interval
      plus lifecycle events.
    heartbeat_interval_s: seconds between heartbeats of a live session.
    target_events_per_s: if set, overrides concurrent_viewers with the number of viewers
      that gives this many events per second on average.
    customers, titles: population sizes (ids cust_000001.., title_00001..).
    """

    seed: int = 42
    start: datetime | None = None
    concurrent_viewers: int = 200
    heartbeat_interval_s: float = 10.0
    target_events_per_s: float | None = None
    customers: int = 100_000
    titles: int = 10_000

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SimConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.start is not None and not isinstance(self.start, datetime):
            raise SimConfigError(f"start must be a datetime, got {self.start!r}")
        if isinstance(self.concurrent_viewers, bool) or not isinstance(self.concurrent_viewers, int) or not (
            1 <= self.concurrent_viewers <= 1_000_000
        ):
            raise SimConfigError(f"concurrent_viewers must be an integer in 1..1000000, got {self.concurrent_viewers!r}")
        hb = self.heartbeat_interval_s
        if isinstance(hb, bool) or not isinstance(hb, (int, float)) or not (0.5 <= hb <= 3600):
            raise SimConfigError(f"heartbeat_interval_s must be a number in 0.5..3600, got {hb!r}")
        tps = self.target_events_per_s
        if tps is not None and (isinstance(tps, bool) or not isinstance(tps, (int, float)) or not (0 < tps <= 1e7)):
            raise SimConfigError(f"target_events_per_s must be a number in (0, 1e7], got {tps!r}")
        for name in ("customers", "titles"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not (1 <= v <= 99_999 if name == "titles" else 1 <= v <= 999_999):
                raise SimConfigError(f"{name} must be a positive integer below {'100000' if name == 'titles' else '1000000'}, got {v!r}")

    @property
    def start_ms(self) -> int:
        return to_ms(self.start or DEFAULT_START)

    @property
    def heartbeat_ms(self) -> int:
        return int(round(self.heartbeat_interval_s * 1000))


def to_ms(t: datetime) -> int:
    """UTC epoch milliseconds of a datetime (naive means UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def iso_ms(ms: int) -> str:
    """'YYYY-MM-DDTHH:MM:SS.mmmZ' for epoch milliseconds."""
    return _second_prefix(ms // 1000).decode() + ".%03dZ" % (ms % 1000)


def _second_prefix(sec: int) -> bytes:
    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S").encode()


def _rng(seed: int, tag: int, ident: int) -> random.Random:
    return random.Random(((seed & _MASK64) << 72) | (tag << 64) | (ident & _MASK64))


# ----------------------------------------------------------------------------- population
_STATE_CUM = pop.cumulative([w for _, w, _ in pop.STATES])
_ACCESS_CUM = pop.cumulative([w for _, w, _ in pop.HOME_ACCESS])
_DEVICE_TYPES = list(pop.DEVICE_TYPE_WEIGHTS)
_DEVICE_CUM = pop.cumulative(list(pop.DEVICE_TYPE_WEIGHTS.values()))
_TITLE_TYPES = (("movie", 0.6, 85, 170), ("series", 0.3, 22, 60), ("documentary", 0.1, 45, 110))
_TITLE_CUM = pop.cumulative([w for _, w, _, _ in _TITLE_TYPES])


@dataclass(frozen=True)
class Device:
    device_id: str
    device_type: str
    device_os: str
    app_version: str
    uhd: bool


@dataclass(frozen=True)
class Customer:
    customer_id: str
    state: str
    city: str
    access: str  # home connection: fiber, cable, dsl or satellite
    isp: str
    ip_address: str
    devices: tuple[Device, ...]


@lru_cache(maxsize=16384)
def customer(seed: int, cid: int) -> Customer:
    """The customer `cid`: a fixed home (location, access, ISP, IP) and 1..4 devices."""
    r = _rng(seed, _T_CUSTOMER, cid)
    state, _, cities = pop.STATES[bisect_right(_STATE_CUM, r.random())]
    city = cities[int(r.random() * len(cities))]
    access, _, isps = pop.HOME_ACCESS[bisect_right(_ACCESS_CUM, r.random())]
    isp = isps[int(r.random() * len(isps))]
    ip = "%d.%d.%d.%d" % (pop.ISP_FIRST_OCTET[isp], r.randrange(256), r.randrange(256), r.randrange(1, 255))
    devices = []
    for _ in range(1 + min(pop.MAX_DEVICES_PER_CUSTOMER - 1, int(r.expovariate(1.0)))):
        dtype = _DEVICE_TYPES[bisect_right(_DEVICE_CUM, r.random())]
        oses = DEVICE_OS[dtype]
        devices.append(
            Device(
                device_id=str(uuid.UUID(int=r.getrandbits(128), version=4)),
                device_type=dtype,
                device_os=oses[int(r.random() * len(oses))],
                app_version="%d.%d.%d" % (r.randint(4, 6), r.randint(0, 12), r.randint(0, 30)),
                uhd=dtype in UHD_DEVICE_TYPES and r.random() < pop.UHD_CAPABLE_TV_SHARE,
            )
        )
    return Customer("cust_%06d" % cid, state, city, access, isp, ip, tuple(devices))


@lru_cache(maxsize=16384)
def title(seed: int, tid: int) -> tuple[str, str, int]:
    """(title_id, title_type, duration_seconds) of title `tid`."""
    r = _rng(seed, _T_TITLE, tid)
    ttype, _, lo, hi = _TITLE_TYPES[bisect_right(_TITLE_CUM, r.random())]
    return "title_%05d" % tid, ttype, int(r.uniform(lo, hi) * 60)


# ----------------------------------------------------------------------------- QoE model
# connection_type -> (median Mbps, log-sd per heartbeat step, startup latency ms,
#                     extra rebuffers per minute, fatal-error multiplier)
NETWORK = {
    "fiber": (200.0, 0.08, 40, 0.0, 1.0),
    "cable": (90.0, 0.12, 60, 0.0, 1.0),
    "wifi": (45.0, 0.18, 80, 0.02, 1.0),
    "dsl": (10.0, 0.15, 150, 0.03, 1.2),
    "mobile": (18.0, 0.30, 300, 0.08, 2.0),
    "satellite": (8.0, 0.30, 700, 0.10, 2.0),
}
DEVICE_STARTUP_MS = {"tv": 900, "web": 600, "mobile": 700, "tablet": 700}
LADDER_KBPS = [k for k, _ in ABR_LADDER]
ABR_HEADROOM = 0.7  # ABR picks the highest rung <= 70% of measured bandwidth
_PER_MS = 1 / 60_000  # per-minute rates -> per-ms
PAUSE_PER_MS = 1 / 900_000
SEEK_PER_MS = 1 / 1_200_000
ERROR_PER_MS = 1 / 2_400_000  # non-fatal errors
FATAL_PER_MS = 1 / 14_400_000
VSF_PROB = {"satellite": 0.025, "mobile": 0.02, "dsl": 0.013}
VSF_BASE = 0.008
VSF_CODES = (b'"MANIFEST_LOAD_ERROR"', b'"DRM_LICENSE_FAILED"', b'"MEDIA_ERR_SRC_NOT_SUPPORTED"')
NONFATAL_CODES = (b'"SEGMENT_RETRY"', b'"CDN_FAILOVER"', b'"DECODER_RECOVERED"')
FATAL_CODES = (b'"MEDIA_ERR_DECODE"', b'"MEDIA_ERR_NETWORK"', b'"DRM_KEY_EXPIRED"')

# event type and player state codes (index into schema tuples, bytes for the template)
(E_START, E_PAUSE, E_RESUME, E_STOP, E_COMPLETE, E_FIRST_FRAME, E_HEARTBEAT, E_REBUF_START, E_REBUF_END, E_BITRATE,
 E_SEEK, E_ERROR) = range(12)
from acme_telemetry.schema import EVENT_TYPES, PLAYER_STATES  # noqa: E402

_ET = [t.encode() for t in EVENT_TYPES]
_PS = [s.encode() for s in PLAYER_STATES]
S_STARTING, S_PLAYING, S_PAUSED, S_REBUF, S_ENDED, S_QUIT, S_FAILED = range(7)


def _json_str(s: str) -> bytes:
    """A JSON string literal, safe inside a %-template."""
    return orjson.dumps(s).replace(b"%", b"%%")


class _Session:
    """Static facts of one session, fixed for its whole life."""

    __slots__ = ("uid", "start", "key", "tpl", "device_type", "connection_type", "state")

    def __init__(self, uid: int, start: int, key: bytes, tpl: bytes, device_type: str, connection_type: str, state: str):
        self.uid = uid
        self.start = start
        self.key = key
        self.tpl = tpl
        self.device_type = device_type
        self.connection_type = connection_type
        self.state = state


def _intended_watch_ms(r: random.Random) -> int:
    return int(r.lognormvariate(math.log(25 * 60_000), 0.9))


def _deadline(start: int, watch_ms: int) -> int:
    """Latest end of a session: it is stopped there if still alive (viewer walked away)."""
    return start + min(MAX_SESSION_MS, 75_000 + 2 * watch_ms + 15 * 60_000)


def _make_session(cfg: SimConfig, uid: int, start: int, r: random.Random, watch_ms: int):
    seed = cfg.seed
    cust = customer(seed, 1 + int(r.random() * cfg.customers))
    dev = cust.devices[int(r.random() * len(cust.devices))]
    tid = 1 + int(cfg.titles * r.random() ** 3)  # a few titles are popular
    title_id, title_type, dur_s = title(seed, tid)
    # Phones and tablets are on the cellular network a third of the time, else on home wifi;
    # tvs and computers use the home line.
    if dev.device_type in ("mobile", "tablet"):
        if r.random() < 0.35:
            conn = "mobile"
            isp = pop.MOBILE_CARRIERS[int(r.random() * len(pop.MOBILE_CARRIERS))]
            ip = "%d.%d.%d.%d" % (pop.ISP_FIRST_OCTET[isp], r.randrange(256), r.randrange(256), r.randrange(1, 255))
        else:
            conn, isp, ip = "wifi", cust.isp, cust.ip_address
    else:
        conn, isp, ip = cust.access, cust.isp, cust.ip_address
    cdn = pop.CDNS[int(r.random() * len(pop.CDNS))]
    session_id = str(uuid.UUID(int=r.getrandbits(128), version=4))
    hi = r.getrandbits(64)
    eid_prefix = "%08x-%04x-8%03x-%04x-" % (hi >> 32, (hi >> 16) & 0xFFFF, (hi >> 4) & 0xFFF, 0x8000 | r.getrandbits(14))
    tpl = b"".join(
        (
            b'{"event_id":"', eid_prefix.encode(), b'%012x","event_type":"%s","event_timestamp":"%s.%03dZ","customer_id":',
            _json_str(cust.customer_id), b',"title_id":', _json_str(title_id),
            b',"session_id":', _json_str(session_id), b',"device_id":', _json_str(dev.device_id),
            b',"title_type":', _json_str(title_type), b',"device_type":', _json_str(dev.device_type),
            b',"device_os":', _json_str(dev.device_os), b',"app_version":', _json_str(dev.app_version),
            b',"quality":"%s","bandwidth_mbps":%.2f,"buffering_events":%d,"buffering_duration_seconds":%.3f,'
            b'"error_count":%d,"watch_duration_seconds":%d,"position_seconds":%d,"completion_percentage":%.2f,'
            b'"ip_address":', _json_str(ip), b',"isp":', _json_str(isp),
            b',"connection_type":', _json_str(conn), b',"country":"US","state":', _json_str(cust.state),
            b',"city":', _json_str(cust.city), b',"seq":%d,"title_duration_seconds":', b"%d" % dur_s,
            b',"bitrate_kbps":%d,"startup_time_ms":%s,"rebuffer_duration_ms":%s,"error_code":%s,"fatal":%s,'
            b'"cdn":', _json_str(cdn), b',"video_started":%s,"player_state":"%s"}',
        )
    )
    sess = _Session(uid, start, session_id.encode(), tpl, dev.device_type, conn, cust.state)
    salt = r.getrandbits(48)
    pos0_s = 0 if r.random() < 0.75 else int(r.random() * 0.9 * dur_s)
    return sess, dev, conn, dur_s, pos0_s, salt


def _session_events(cfg: SimConfig, sess: _Session, r: random.Random, watch_ms: int, out: list, collect: bool):
    """Generator: runs one session's player state machine, appending its events to `out`.

    Sent the end of the current bucket, it appends every event before that time and
    pauses; it returns when the session has ended. Each appended item is
    (ts_ms, uid, session, template_args, truth_fact_or_None).
    """
    sess_, dev, conn, dur_s, pos0_s, salt = _make_session(cfg, sess.uid, sess.start, r, watch_ms)
    sess.key, sess.tpl = sess_.key, sess_.tpl
    sess.device_type, sess.connection_type, sess.state = sess_.device_type, sess_.connection_type, sess_.state
    uid = sess.uid
    rnd, expo, gauss, lognorm = r.random, r.expovariate, r.gauss, r.lognormvariate
    hb_ms = cfg.heartbeat_ms
    median, sigma, latency, extra_rebuf, fatal_mult = NETWORK[conn]
    log_med = math.log(median)
    ladder = LADDER_KBPS if dev.uhd else LADDER_KBPS[:-1]
    quality_of = [q.encode() for _, q in ABR_LADDER]
    fatal_rate = FATAL_PER_MS * fatal_mult
    base_rate = PAUSE_PER_MS + SEEK_PER_MS + ERROR_PER_MS + fatal_rate
    dur_ms = dur_s * 1000
    start = sess.start
    deadline = _deadline(start, watch_ms)
    W = watch_ms  # content ms the viewer still intends to watch
    eid_mul = 0x9E3779B97F4A7C15
    MASK48 = (1 << 48) - 1
    secs: dict[int, bytes] = {}
    NULL, TRUE, FALSE = b"null", b"true", b"false"

    log_bw = log_med + gauss(0.0, 0.4)
    bw = math.exp(log_bw)
    rung = max(0, bisect_right(ladder, ABR_HEADROOM * 1000 * bw) - 1)
    bitrate = ladder[rung]
    quality = quality_of[rung]

    pos_ms = pos0_s * 1000
    played = 0
    stall = 0
    buf_events = 0
    errors = 0
    seq = 0
    state = S_STARTING
    started = False
    t = start
    next_hb = start + hb_ms
    pending_switch = None
    pending_rung = rung

    # startup outcome: first frame, exit before video start, or video start failure
    startup = int((DEVICE_STARTUP_MS[dev.device_type] + 4000.0 / bw**0.7 + latency) * lognorm(0.0, 0.35))
    startup = min(max(startup, 150), 60_000)
    patience = min(int(lognorm(math.log(9000), 0.9)), 60_000)
    vsf = rnd() < VSF_BASE + VSF_PROB.get(conn, 0.0)
    fail_after = int(200 + rnd() * min(startup, patience))
    if vsf:  # a failing start errors out, unless the viewer gives up first
        outcome, outcome_t = (E_ERROR, start + fail_after) if fail_after < patience else (E_STOP, start + patience)
    elif patience < startup:  # exit before video start
        outcome, outcome_t = E_STOP, start + patience
    else:
        outcome, outcome_t = E_FIRST_FRAME, start + startup

    until = yield
    etype = E_START
    te = start
    startup_b = rebuf_b = code_b = NULL
    fatal_b = FALSE
    fact = None
    interval_state = S_STARTING
    pause_end = rebuf_end = 0
    quit_at_end = False
    rebuf_start_t = 0
    played_d = stall_d = 0
    prev_bitrate, prev_quality = bitrate, quality
    while True:
        # ---- emit the decided event (te, etype) ----
        if te <= t and seq:
            te = t + 1
        while te >= until:
            until = yield
        sec = te // 1000
        p = secs.get(sec)
        if p is None:
            if len(secs) > 64:
                secs.clear()
            p = secs[sec] = _second_prefix(sec)
        pos_s = pos_ms // 1000
        if collect:
            fact = (etype, played_d, stall_d, prev_bitrate, prev_quality, startup if etype == E_FIRST_FRAME else None,
                    vsf and etype == E_ERROR and not started, etype == E_STOP and not started,
                    etype == E_ERROR and fatal_b is TRUE and started)
        out.append((te, uid, sess, (
            (seq * eid_mul + salt) & MASK48, _ET[etype], p, te % 1000, quality, bw, buf_events, stall / 1000.0, errors,
            played // 1000, pos_s, pos_s * 100.0 / dur_s, seq, bitrate, startup_b, rebuf_b, code_b, fatal_b,
            TRUE if started else FALSE, _PS[state]), fact))
        if state >= S_ENDED:
            return
        t = te
        seq += 1
        startup_b = rebuf_b = code_b = NULL
        fatal_b = FALSE
        prev_bitrate, prev_quality = bitrate, quality
        interval_state = state
        played_d = stall_d = 0

        # ---- decide the next event ----
        if state == S_PLAYING:
            te = next_hb
            etype = E_HEARTBEAT
            rate = base_rate + (0.02 + extra_rebuf + 2.0 / bw) * _PER_MS
            th = t + 1 + int(expo(rate))
            if th < te:
                te, etype = th, -1  # a hazard fires; which one is drawn below
            if pending_switch is not None and pending_switch < te:
                te, etype = pending_switch, E_BITRATE
            tw = t + W
            if tw < te:
                te, etype = tw, E_STOP
            tt = t + dur_ms - pos_ms
            if tt < te:
                te, etype = max(tt, t + 1), E_COMPLETE
            if deadline < te:
                te, etype = max(deadline, t + 1), E_STOP
            d = te - t
            if etype == E_COMPLETE:
                d = dur_ms - pos_ms
            pos_ms += d
            played += d
            played_d = te - t
            W -= d
            if etype == -1:
                x = rnd() * rate
                if x < PAUSE_PER_MS:
                    etype, state = E_PAUSE, S_PAUSED
                    pending_switch = None
                    pause_end = te + 1000 + int(lognorm(math.log(45_000), 1.0))
                    quit_at_end = rnd() < 0.15
                elif x < PAUSE_PER_MS + SEEK_PER_MS:
                    etype = E_SEEK
                    if rnd() < 0.6:
                        pos_ms = min(pos_ms + 10_000 + int(rnd() * 590_000), max(dur_ms - 5_000, pos_ms))
                    else:
                        pos_ms = max(0, pos_ms - 5_000 - int(rnd() * 295_000))
                elif x < PAUSE_PER_MS + SEEK_PER_MS + ERROR_PER_MS:
                    etype = E_ERROR
                    errors += 1
                    code_b = NONFATAL_CODES[int(rnd() * len(NONFATAL_CODES))]
                elif x < base_rate:
                    etype, state = E_ERROR, S_FAILED
                    errors += 1
                    code_b = FATAL_CODES[int(rnd() * len(FATAL_CODES))]
                    fatal_b = TRUE
                else:
                    etype, state = E_REBUF_START, S_REBUF
                    pending_switch = None
                    buf_events += 1
                    rebuf_start_t = te
                    length = int(lognorm(math.log(600 + 20_000 / bw), 0.8)) + 1
                    quit_at_end = length > 12_000 and rnd() < 0.5
                    rebuf_end = te + (12_000 if quit_at_end else length)
            elif etype == E_STOP:
                state = S_QUIT
            elif etype == E_COMPLETE:
                state = S_ENDED
            elif etype == E_BITRATE:
                rung = pending_rung
                bitrate, quality = ladder[rung], quality_of[rung]
                pending_switch = None
        elif state == S_STARTING:
            te, etype = next_hb, E_HEARTBEAT
            if outcome_t < te:
                te, etype = outcome_t, outcome
                if etype == E_FIRST_FRAME:
                    state, started = S_PLAYING, True
                    startup_b = b"%d" % startup
                elif etype == E_STOP:
                    state = S_QUIT
                else:
                    state, fatal_b = S_FAILED, TRUE
                    errors += 1
                    code_b = VSF_CODES[int(rnd() * len(VSF_CODES))]
        elif state == S_PAUSED:
            te, etype = next_hb, E_HEARTBEAT
            if pause_end < te:
                te = pause_end
                if quit_at_end:
                    etype, state = E_STOP, S_QUIT
                else:
                    etype, state = E_RESUME, S_PLAYING
            if deadline < te:
                te, etype, state = deadline, E_STOP, S_QUIT
        else:  # rebuffering
            te, etype = next_hb, E_HEARTBEAT
            if rebuf_end < te:
                te = rebuf_end
                if quit_at_end:
                    etype, state = E_STOP, S_QUIT
                else:
                    etype, state = E_REBUF_END, S_PLAYING
            if deadline < te:
                te, etype, state = deadline, E_STOP, S_QUIT
            if te <= t:
                te = t + 1
            stall += te - t
            stall_d = te - t
            if etype == E_REBUF_END:
                rebuf_b = b"%d" % (te - rebuf_start_t)
        if etype == E_HEARTBEAT:
            next_hb += hb_ms
            if next_hb <= te:
                next_hb = te + hb_ms
            # bandwidth: mean-reverting random walk in log space
            log_bw += 0.1 * (log_med - log_bw) + gauss(0.0, sigma)
            bw = math.exp(log_bw)
            if state == S_PLAYING:
                want = max(0, bisect_right(ladder, ABR_HEADROOM * 1000 * bw) - 1)
                if want != rung and pending_switch is None:
                    pending_rung = want
                    pending_switch = te + 50 + int(rnd() * 900)
                elif want == rung:
                    pending_switch = None


@lru_cache(maxsize=64)
def session_stats(heartbeat_ms: int) -> tuple[float, float]:
    """(mean session lifetime in ms, mean events per session), from a fixed calibration run.

    The arrival rate follows from Little's law: concurrent = rate x mean lifetime.
    """
    cfg = SimConfig(seed=0x5EED, heartbeat_interval_s=heartbeat_ms / 1000)
    n, life, events = 800, 0, 0
    for i in range(n):
        r = _rng(cfg.seed, _T_SESSION, i)
        w = _intended_watch_ms(r)
        sess = _Session(i, 0, b"", b"", "", "", "")
        out: list = []
        gen = _session_events(cfg, sess, r, w, out, False)
        next(gen)
        try:
            gen.send(float("inf"))
        except StopIteration:
            pass
        life += out[-1][0] + 1
        events += len(out)
    return life / n, events / n


def arrival_rate_per_ms(cfg: SimConfig) -> float:
    life, events = session_stats(cfg.heartbeat_ms)
    if cfg.target_events_per_s is not None:
        return cfg.target_events_per_s / 1000.0 / events
    return cfg.concurrent_viewers / life


def expected_events_per_s(cfg: SimConfig) -> float:
    """Mean events per second the config produces (in steady state)."""
    return arrival_rate_per_ms(cfg) * 1000.0 * session_stats(cfg.heartbeat_ms)[1]


def _raw(cfg: SimConfig, ws: int, we: float, truth=None) -> Iterator[tuple]:
    """Events with ws <= ts < we as (ts, uid, session, args, fact), in (ts, uid) order."""
    lam = arrival_rate_per_ms(cfg)
    seed = cfg.seed
    collect = truth is not None
    live: list = []
    out: list = []
    first = (ws - MAX_SESSION_MS) // BUCKET_MS
    for b in count(first):
        b_start = b * BUCKET_MS
        if b_start >= we:
            return
        b_end = b_start + BUCKET_MS
        # arrivals in this bucket: a Poisson process, drawn from (seed, bucket)
        ra = _rng(seed, _T_BUCKET, b)
        t = b_start + ra.expovariate(lam)
        i = 0
        while t < b_end:
            uid = (b << 20) | i
            r = _rng(seed, _T_SESSION, uid)
            w = _intended_watch_ms(r)
            st = int(t)
            if _deadline(st, w) >= ws:
                sess = _Session(uid, st, b"", b"", "", "", "")
                gen = _session_events(cfg, sess, r, w, out, collect)
                next(gen)
                live.append(gen)
            i += 1
            t += ra.expovariate(lam)
        ended = False
        for gen in live:
            try:
                gen.send(b_end)
            except StopIteration:
                ended = True
        if ended:
            live = [g for g in live if g.gi_frame is not None]
        if b_end > ws:
            out.sort()
            for ev in out:
                ts = ev[0]
                if ts < ws:
                    continue
                if ts >= we:
                    return
                yield ev
        out.clear()


def iter_window(config: SimConfig, window_start: datetime, window_end: datetime, truth=None) -> Iterator[tuple[bytes, bytes]]:
    """(session_id, JSON event) for every event with window_start <= ts < window_end, in time order.

    Stateless: derives every session from (seed, time), so consecutive windows concatenate
    to the one-window stream. Pass a GroundTruth as `truth` to record what was emitted.
    """
    ws, we = to_ms(window_start), to_ms(window_end)
    if we < ws:
        raise SimConfigError(f"window_end {window_end} is before window_start {window_start}")
    yield from _records(config, ws, we, None, truth)


def iter_records(n: int, config: SimConfig, truth=None) -> Iterator[tuple[bytes, bytes]]:
    """The first n events from config.start, as (session_id, JSON event), in time order."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SimConfigError(f"n must be a non-negative integer, got {n!r}")
    yield from _records(config, config.start_ms, float("inf"), n, truth)


def _records(config: SimConfig, ws: int, we: float, n: int | None, truth) -> Iterator[tuple[bytes, bytes]]:
    if n == 0:
        return
    left = n if n is not None else -1
    if truth is None:
        for ev in _raw(config, ws, we):
            s = ev[2]
            yield s.key, s.tpl % ev[3]
            left -= 1
            if not left:
                return
    else:
        for ev in _raw(config, ws, we, truth):
            s = ev[2]
            truth.observe(s, ev[0], ev[4])
            yield s.key, s.tpl % ev[3]
            left -= 1
            if not left:
                return


def iter_lines(n: int, config: SimConfig, chunk: int = 4096) -> Iterator[bytes]:
    """The first n events as JSON Lines, in blocks of up to `chunk` lines (for the CLI)."""
    buf: list[bytes] = []
    for _, v in iter_records(n, config):
        buf.append(v)
        if len(buf) >= chunk:
            buf.append(b"")
            yield b"\n".join(buf)
            buf.clear()
    if buf:
        buf.append(b"")
        yield b"\n".join(buf)


# re-export for population users
__all__ = ["SimConfig", "SimConfigError", "iter_records", "iter_window", "iter_lines", "customer", "title", "replace"]
