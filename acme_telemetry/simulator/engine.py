"""The viewer simulator: sessions on a player state machine, merged into one time-ordered stream.

Design (why it is coherent, deterministic, window-stable and fast):

* **State is derived, not persisted.** Time is cut into arrival buckets of BUCKET_MS,
  aligned to the Unix epoch. The sessions that start in bucket b, and everything about
  each of them, come from random streams seeded with (seed, b) and (seed, session uid);
  customers and titles from (seed, id). So any process can regenerate any window, and the
  generator Lambda keeps no state between invocations. A window [a, b) replays the
  sessions that started in the MAX_SESSION_MS before b (every session ends by its
  deadline), skips without simulating those whose deadline is before a, simulates the
  others from their start (rendering nothing before a), and keeps the events with
  a <= ts < b. No draw depends on where a window or chunk cuts a session, so consecutive
  windows concatenate to exactly the one-window stream (tested with odd cut points).
* **A session is one Python generator** holding its player state in fast locals. The
  driver advances all live sessions one chunk of buckets at a time (~20k events), then
  renders and merges the chunk by (timestamp, session uid). Memory is bounded by the live
  sessions plus one chunk, not by the number of events.
* **Rendering is built for speed.** Each session has one bytes template with its static
  fields (customer, device, title, network, geography) JSON-escaped once; per player state
  a heartbeat template also bakes in the slowly changing fields. Heartbeats (~88% of
  events) come in runs between lifecycle events; a run is recorded as one row, and the
  chunk expands all rows with numpy and fills the templates with `bytes % tuple` of
  pre-rendered byte pieces (integer, percentage and hex tables) through C-level
  itemgetter/map/zip. Lifecycle events are rendered one by one.

The player model (CTA-2066 events, CMCD states): start (play attempt) -> first_frame
after a startup time that grows as bandwidth falls, or an exit before video start when
the viewer's patience runs out, or a video start failure. While playing, competing
exponential hazards, set from the bandwidth at each lifecycle event, give pause, seek,
rebuffer (more likely as bandwidth falls; stalls last longer too), non-fatal and fatal
errors. Heartbeats come every heartbeat interval in every state; bandwidth is a
mean-reverting log random walk around the connection type's median, sampled at each
heartbeat; ABR picks the highest rung at or below 70% of bandwidth, with hysteresis, and
switches a moment after the heartbeat that saw the change. A session ends with complete
(title end), stop (intended watch time reached, quit while paused or stalled, or the
deadline) or a fatal error.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from statistics import NormalDist
from itertools import chain, count
from operator import itemgetter
from typing import Iterator

import numpy as np
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


def uuid4_str(bits: int) -> str:
    """A random (version 4, RFC 4122 variant) UUID string from 128 random bits; as
    str(uuid.UUID(int=bits, version=4)), without building a UUID object."""
    h = "%032x" % ((bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=4096)
def customer(seed: int, cid: int) -> Customer:
    """The customer `cid`: a fixed home (location, access, ISP, IP) and 1..4 devices."""
    r = _rng(seed, _T_CUSTOMER, cid)
    state, _, cities = pop.STATES[bisect_right(_STATE_CUM, r.random())]
    city = cities[int(r.random() * len(cities))]
    access, _, isps = pop.HOME_ACCESS[bisect_right(_ACCESS_CUM, r.random())]
    isp = isps[int(r.random() * len(isps))]
    bits = r.getrandbits(24)
    ip = "%d.%d.%d.%d" % (pop.ISP_FIRST_OCTET[isp], bits >> 16, (bits >> 8) & 0xFF, 1 + (bits & 0xFF) % 254)
    devices = []
    for _ in range(1 + min(pop.MAX_DEVICES_PER_CUSTOMER - 1, int(r.expovariate(1.0)))):
        dtype = _DEVICE_TYPES[bisect_right(_DEVICE_CUM, r.random())]
        oses = DEVICE_OS[dtype]
        devices.append(
            Device(
                device_id=uuid4_str(r.getrandbits(128)),
                device_type=dtype,
                device_os=oses[int(r.random() * len(oses))],
                app_version="%d.%d.%d" % (4 + int(r.random() * 3), int(r.random() * 13), int(r.random() * 31)),
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


class _Session:
    """Identity and slices of one session (what GroundTruth needs), fixed for its whole life."""

    __slots__ = ("uid", "start", "key", "device_type", "connection_type", "state")

    def __init__(self, uid: int, start: int):
        self.uid = uid
        self.start = start
        self.key = b""
        self.device_type = self.connection_type = self.state = ""


def _intended_watch_ms(r: random.Random) -> int:
    return int(r.lognormvariate(math.log(25 * 60_000), 0.9))


def _deadline(start: int, watch_ms: int) -> int:
    """Latest end of a session: it is stopped there if still alive (viewer walked away)."""
    return start + min(MAX_SESSION_MS, 75_000 + 2 * watch_ms + 15 * 60_000)


def _make_session(cfg: SimConfig, sess: _Session, r: random.Random):
    """Draws the session's fixed facts; fills sess (key, slices) and returns the model inputs."""
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
            bits = r.getrandbits(24)
            ip = "%d.%d.%d.%d" % (pop.ISP_FIRST_OCTET[isp], bits >> 16, (bits >> 8) & 0xFF, 1 + (bits & 0xFF) % 254)
        else:
            conn, isp, ip = "wifi", cust.isp, cust.ip_address
    else:
        conn, isp, ip = cust.access, cust.isp, cust.ip_address
    cdn = pop.CDNS[int(r.random() * len(pop.CDNS))]
    session_id = uuid4_str(r.getrandbits(128))
    hi = r.getrandbits(98)
    # event_id: a UUIDv8 (RFC 9562 custom layout): 82 random bits of the session, then the
    # event's seq in the last 6 hex digits, so ids are unique without a draw per event.
    eid_prefix = "%08x-%04x-8%03x-%04x-%06x" % (
        hi >> 66, (hi >> 50) & 0xFFFF, (hi >> 38) & 0xFFF, 0x8000 | ((hi >> 24) & 0x3FFF), hi & 0xFFFFFF)

    def s(v: str) -> bytes:
        b = orjson.dumps(v)
        if b"%" in b:  # the template is %-formatted twice (heartbeat templates); our data has no %
            raise ValueError(f"a session field contains '%': {v!r}")
        return b

    # One template per session; every slot is %s and takes bytes: the 14 slowly changing
    # fields are filled once per player state (heartbeat templates), the 9 per-event ones
    # (event_id tail, second, millisecond, bandwidth, watch time, position, completion,
    # seq, played_ms) per event.
    master = b"".join(
        (
            b'{"event_id":"', eid_prefix.encode(), b'%s","event_type":"%s","event_timestamp":"%s.%sZ","customer_id":',
            s(cust.customer_id), b',"title_id":', s(title_id),
            b',"session_id":', s(session_id), b',"device_id":', s(dev.device_id),
            b',"title_type":', s(title_type), b',"device_type":', s(dev.device_type),
            b',"device_os":', s(dev.device_os), b',"app_version":', s(dev.app_version),
            b',"quality":"%s","bandwidth_mbps":%s,"buffering_events":%s,"buffering_duration_seconds":%s,'
            b'"error_count":%s,"watch_duration_seconds":%s,"position_seconds":%s,"completion_percentage":%s,'
            b'"ip_address":', s(ip), b',"isp":', s(isp),
            b',"connection_type":', s(conn), b',"country":"US","state":', s(cust.state),
            b',"city":', s(cust.city), b',"seq":%s,"title_duration_seconds":', b"%d" % dur_s,
            b',"bitrate_kbps":%s,"startup_time_ms":%s,"rebuffer_duration_ms":%s,"error_code":%s,"fatal":%s,'
            b'"cdn":', s(cdn), b',"video_started":%s,"player_state":"%s","played_ms":%s,"stalled_ms":%s,'
            b'"played_bitrate_kbps":%s}',
        )
    )
    sess.key = session_id.encode()
    sess.device_type, sess.connection_type, sess.state = dev.device_type, conn, cust.state
    salt = 0
    pos0_s = 0 if r.random() < 0.75 else int(r.random() * 0.9 * dur_s)
    return master, dev, conn, dur_s, pos0_s, salt


# Standard normal quantiles at 8192 equally likely points: a normal draw is one uniform
# and a table lookup (Random.gauss costs ten times more per call).
_NORMAL = [NormalDist().inv_cdf((i + 0.5) / 8192) for i in range(8192)]
_QUALITY_B = [q.encode() for _, q in ABR_LADDER]
_KBPS_B = [b"%d" % k for k in LADDER_KBPS]
_NULL, _TRUE, _FALSE = b"null", b"true", b"false"
ABR_UP_MARGIN = 1.25  # hysteresis: switch up only with 25% to spare ...
ABR_DOWN_MARGIN = 0.9  # ... and down only 10% below the rung's need
# Pre-rendered numbers: formatting with %s of ready bytes costs half of %d / %.2f / %x.
_TABLE = 20_000  # covers seq, watch and position seconds of any session (5 h cap)
_INT_B = [b"%d" % i for i in range(_TABLE)]
_HEX6_B = [b"%06x" % i for i in range(_TABLE)]
_MS_B = [b"%03d" % i for i in range(1000)]
_CENTI_B = [b"%d.%02d" % divmod(i, 100) for i in range(10_001)]  # completion 0.00..100.00


_POOL, _BLOCK = 1 << 16, 64
_UNIT: list = []


def _unit_path():
    """(unit AR(1) path u[k+1] = 0.9 u[k] + z, z ~ N(0, 1); decay 0.9**j for j = 1..BLOCK).

    Drawn once per process from a fixed seed (numpy's PCG64), so it is identical
    everywhere; sessions enter it at positions drawn from their own random streams.
    """
    if not _UNIT:
        z = np.random.Generator(np.random.PCG64(20261126)).standard_normal(_POOL)
        u = np.empty(_POOL)
        u[0] = z[0] / math.sqrt(1 - 0.81)
        for i in range(1, _POOL):  # once per process, ~30 ms
            u[i] = 0.9 * u[i - 1] + z[i]
        _UNIT.extend((u, 0.9 ** np.arange(1, _BLOCK + 1)))
    return _UNIT[0], _UNIT[1]


_BW_TABLE = 100_000  # centi-Mbps rendered ahead: 0.00 .. 999.99
_BW_B: list = []


def _bw_b(v: float) -> bytes:
    """bandwidth_mbps as JSON: two decimals, rounded half to even like the bulk path."""
    c = round(v * 100)
    if not _BW_B:
        _BW_B.extend(b"%d.%02d" % divmod(i, 100) for i in range(_BW_TABLE))
    return _BW_B[c] if c < _BW_TABLE else b"%d.%02d" % divmod(c, 100)


def _bw_render(values: list) -> tuple:
    if not _BW_B:
        _bw_b(0.0)
    cs = np.rint(np.array(values) * 100).astype(np.int64)
    if len(cs) and int(cs.max()) >= _BW_TABLE:
        return tuple(_bw_b(v) for v in values)
    return _pick(cs.tolist(), _BW_B)


def _int_b(i: int) -> bytes:
    return _INT_B[i] if i < _TABLE else b"%d" % i


def _hex6_b(i: int) -> bytes:
    return _HEX6_B[i] if i < _TABLE else b"%06x" % i


def _session_events(cfg: SimConfig, sess: _Session, r: random.Random, watch_ms: int, out: "_Chunk", collect: bool,
                    secs: dict, emit_from: float = 0, count_only: bool = False):
    """Generator: runs one session's player state machine, appending its events to `out`.

    Sent the end of the current bucket, it records every event before that time in `out`
    (a _Chunk) and pauses; it returns when the session has ended. Events before `emit_from`
    are simulated but not rendered (count_only: nothing is rendered, and the generator
    returns (last timestamp, number of events)). `secs` maps epoch second -> 'YYYY-MM-DDTHH:MM:SS',
    shared by all sessions (the driver fills it for the current chunk).

    The random draws never depend on where buckets cut the session: bandwidth is a path
    indexed by heartbeat number (its own stream), everything else is drawn in event order.
    """
    master, dev, conn, dur_s, pos0_s, _ = _make_session(cfg, sess, r)
    uid, key = sess.uid, sess.key
    lc_ts, lc_uid, lc_kv, lc_fact = out.lc_ts, out.lc_uid, out.lc_kv, out.lc_fact
    run_rows, run_objs, run_bw, run_facts = out.run_rows, out.run_objs, out.run_bw, out.run_facts
    rnd, log, exp = r.random, math.log, math.exp
    normal = _NORMAL
    CENTI, MS = _CENTI_B, _MS_B
    hb_ms = cfg.heartbeat_ms
    median, sigma, latency, extra_rebuf, fatal_mult = NETWORK[conn]
    ladder = LADDER_KBPS if dev.uhd else LADDER_KBPS[:-1]
    top = len(ladder) - 1
    # ABR: stay on a rung while lo <= bw < hi (switching up needs a margin: hysteresis)
    rung_lo = [k / (ABR_HEADROOM * 1000) for k in ladder]
    rung_hi = [rung_lo[i + 1] * ABR_UP_MARGIN for i in range(top)] + [math.inf]
    fatal_rate = FATAL_PER_MS * fatal_mult
    base_rate = PAUSE_PER_MS + SEEK_PER_MS + ERROR_PER_MS + fatal_rate
    # Rebuffer hazard grows as bandwidth falls (floored three stationary sds below the median).
    bw_floor = median * math.exp(-3 * sigma / math.sqrt(1 - 0.9**2))
    rebuf_c = (0.02 + extra_rebuf) * _PER_MS
    rate = base_rate
    dur_ms = dur_s * 1000
    dur2 = 2 * dur_s
    start = sess.start
    deadline = _deadline(start, watch_ms)
    W = watch_ms  # content ms the viewer still intends to watch

    # bandwidth path: path[h] is the throughput (Mbps) measured at heartbeat h (h=0: at
    # start), a mean-reverting random walk in log space: log(bw/median) = x with
    # x[h+1] = 0.9 x[h] + sigma z. Built 64 steps at a time from the shared unit AR(1)
    # path (see _unit_path), entered at a position drawn from the session's own stream.
    rb = random.Random(r.getrandbits(64)).random
    unit, decay = _unit_path()
    x0 = 0.4 * normal[int(rb() * 8192)]
    path = [median * exp(x0)]
    q = int(rb() * (_POOL - _BLOCK))

    def extend_path(upto: int) -> None:
        nonlocal x0, q
        while len(path) <= upto:
            if q + _BLOCK >= _POOL:
                q = int(rb() * (_POOL - _BLOCK))
            dev = decay * (x0 - sigma * unit[q]) + sigma * unit[q + 1 : q + _BLOCK + 1]
            q += _BLOCK
            x0 = float(dev[-1])
            path.extend((median * np.exp(dev)).tolist())

    h = 0
    bw = path[0]
    rung = max(0, bisect_right(ladder, ABR_HEADROOM * 1000 * bw) - 1)

    pos_ms = pos0_s * 1000
    played = stall = buf_events = errors = seq = 0
    state = S_STARTING
    started = False
    t = start
    next_hb = start + hb_ms
    pending_switch = math.inf
    pending_rung = rung
    hb_tpls: dict = {}  # heartbeat templates by slow state
    hb_tpl = None  # the one for the current slow state; None = look up

    # startup outcome: first frame, exit before video start, or video start failure
    startup = int((DEVICE_STARTUP_MS[dev.device_type] + 4000.0 / bw**0.7 + latency) * exp(0.35 * normal[int(rnd() * 8192)]))
    startup = min(max(startup, 150), 60_000)
    patience = min(int(9000 * exp(0.9 * normal[int(rnd() * 8192)])), 60_000)
    vsf = rnd() < VSF_BASE + VSF_PROB.get(conn, 0.0)
    fail_after = int(200 + rnd() * min(startup, patience))
    if vsf:  # a failing start errors out, unless the viewer gives up first
        outcome, outcome_t = (E_ERROR, start + fail_after) if fail_after < patience else (E_STOP, start + patience)
    elif patience < startup:  # exit before video start
        outcome, outcome_t = E_STOP, start + patience
    else:
        outcome, outcome_t = E_FIRST_FRAME, start + startup
    cand = 0  # when the next hazard fires while playing (<= t: draw a new one)

    until = yield
    etype = E_START
    te = start
    startup_b = rebuf_b = code_b = _NULL
    fatal_b = _FALSE
    fact = None
    pause_end = rebuf_end = rebuf_start_t = 0
    quit_at_end = False
    played_d = stall_d = 0
    prev_bitrate, prev_quality = ladder[rung], _QUALITY_B[rung]
    while True:
        # ---- emit the decided event (te, etype) ----
        if te <= t and seq:
            te = t + 1
        while te >= until:
            until = yield
        if count_only:
            pass
        elif te >= emit_from:
            sec = te // 1000
            p = secs.get(sec)
            if p is None:
                p = secs[sec] = _second_prefix(sec)
            pos_s = pos_ms // 1000
            value = master % (
                _hex6_b(seq), _ET[etype], p, MS[te % 1000], _QUALITY_B[rung], _bw_b(path[h]), _int_b(buf_events),
                b"%.3f" % (stall / 1000.0), _int_b(errors), _int_b(played // 1000), _int_b(pos_s),
                CENTI[(pos_s * 20_000 + dur_s) // dur2], _int_b(seq), _KBPS_B[rung], startup_b, rebuf_b, code_b, fatal_b,
                _TRUE if started else _FALSE, _PS[state], b"%d" % played_d, b"%d" % stall_d, b"%d" % prev_bitrate)
            if collect:
                fact = (sess, etype, played_d, stall_d, prev_bitrate, prev_quality,
                        startup if etype == E_FIRST_FRAME else None,
                        vsf and etype == E_ERROR and not started, etype == E_STOP and not started,
                        etype == E_ERROR and fatal_b is _TRUE and started)
            lc_ts.append(te)
            lc_uid.append(uid)
            lc_kv.append((key, value))
            if collect:
                lc_fact.append(fact)
        if etype != E_HEARTBEAT:
            hb_tpl = None
        if state >= S_ENDED:
            return te, seq + 1
        t = te
        seq += 1
        prev_bitrate, prev_quality = ladder[rung], _QUALITY_B[rung]
        if startup_b is not _NULL or rebuf_b is not _NULL or code_b is not _NULL:
            startup_b = rebuf_b = code_b = _NULL
            fatal_b = _FALSE
        played_d = stall_d = 0

        # ---- decide the next event ----
        if state == S_PLAYING:
            tc = t
            while True:
                if next_hb <= tc:  # a lifecycle event took the heartbeat's millisecond
                    next_hb = tc + 1
                if cand <= tc:  # hazards are set from the bandwidth at each lifecycle event
                    rate = base_rate + rebuf_c + 2.0 / (bw if bw > bw_floor else bw_floor) * _PER_MS
                    cand = tc + 1 + int(-log(1.0 - rnd()) / rate)
                # the next non-heartbeat event: a hazard, the ABR switch, intended watch time
                # reached, end of title, or the deadline (ties in this order)
                te, etype = cand, -1
                if pending_switch < te:
                    te, etype = pending_switch, E_BITRATE
                tw = tc + W
                if tw < te:
                    te, etype = tw, E_STOP
                tt = tc + dur_ms - pos_ms
                if tt < te:
                    te, etype = (tt if tt > tc else tc + 1), E_COMPLETE
                if deadline < te:
                    te, etype = (deadline if deadline > tc else tc + 1), E_STOP
                if next_hb < te:
                    # ---- a run of plain heartbeats before it, rendered in bulk ----
                    while next_hb >= until:
                        until = yield
                    end = te if te < until else until
                    n = (end - next_hb + hb_ms - 1) // hb_ms
                    if len(path) <= h + n:
                        extend_path(h + n)
                    lo, hi = rung_lo[rung] * ABR_DOWN_MARGIN, rung_hi[rung]
                    if pending_switch == math.inf and not (
                        (not rung or min(path[h + 1 : h + n + 1]) >= lo) and max(path[h + 1 : h + n + 1]) < hi
                    ):  # ABR looks at each heartbeat's bandwidth; most runs need no switch
                        for i in range(h + 1, h + n + 1):
                            b = path[i]
                            if b < lo and rung or b >= hi:
                                n = i - h
                                want = (max(0, bisect_right(ladder, ABR_HEADROOM * 1000 * b) - 1) if b < lo
                                        else bisect_right(ladder, ABR_HEADROOM * 1000 * b / ABR_UP_MARGIN) - 1)
                                if want != rung:
                                    pending_rung = want
                                    pending_switch = next_hb + (n - 1) * hb_ms + 50 + int(rnd() * 900)
                                break
                    last = next_hb + (n - 1) * hb_ms
                    if last >= emit_from and not count_only:
                        if hb_tpl is None:
                            k = (rung, buf_events, stall, errors, state)
                            hb_tpl = hb_tpls.get(k)
                            if hb_tpl is None:
                                hb_tpl = hb_tpls[k] = master % (
                                    b"%s", b"heartbeat", b"%s", b"%s", _QUALITY_B[rung], b"%s", _int_b(buf_events),
                                    b"%.3f" % (stall / 1000.0), _int_b(errors), b"%s", b"%s", b"%s", b"%s",
                                    _KBPS_B[rung], _NULL, _NULL, _NULL, _FALSE, _TRUE, _PS[state], b"%s", b"0",
                                    _KBPS_B[rung])
                        # one row per run; the driver expands and renders all runs of a chunk at once
                        run_rows.append((next_hb, n, seq, pos_ms + next_hb - tc, played + next_hb - tc, dur_s, uid, 1,
                                         next_hb - tc))
                        run_objs.append((key, hb_tpl))
                        run_bw.extend(path[h + 1 : h + n + 1])
                        if collect:
                            run_facts.append((sess, next_hb - t, prev_bitrate, prev_quality, 1))
                    d = last - tc
                    pos_ms += d
                    played += d
                    W -= d
                    seq += n
                    h += n
                    bw = path[h]
                    t = tc = last
                    next_hb = last + hb_ms
                    played_d = 0
                    continue
                d = te - tc if etype != E_COMPLETE else dur_ms - pos_ms
                pos_ms += d
                played += d
                W -= d
                played_d += d
                tc = te
                if etype != -1:
                    break
                x = rnd() * rate  # which hazard fired
                if x < PAUSE_PER_MS:
                    etype, state = E_PAUSE, S_PAUSED
                    pause_end = te + 1000 + int(45_000 * exp(normal[int(rnd() * 8192)]))
                    quit_at_end = rnd() < 0.15
                    pending_switch = math.inf
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
                    fatal_b = _TRUE
                else:
                    etype, state = E_REBUF_START, S_REBUF
                    buf_events += 1
                    rebuf_start_t = te
                    length = int((600 + 20_000 / bw) * exp(0.8 * normal[int(rnd() * 8192)])) + 1
                    quit_at_end = length > 12_000 and rnd() < 0.5
                    rebuf_end = te + (12_000 if quit_at_end else length)
                    pending_switch = math.inf
                break
            cand = 0  # a lifecycle event: hazards are re-drawn at the new bandwidth
            if etype == E_STOP:
                state = S_QUIT
            elif etype == E_COMPLETE:
                state = S_ENDED
            elif etype == E_BITRATE:
                rung = pending_rung
                pending_switch = math.inf
            continue
        if state == S_STARTING:
            te, etype = next_hb, E_HEARTBEAT
            if outcome_t < te:
                te, etype = outcome_t, outcome
                if etype == E_FIRST_FRAME:
                    state, started = S_PLAYING, True
                    startup_b = b"%d" % startup
                elif etype == E_STOP:
                    state = S_QUIT
                else:
                    state, fatal_b = S_FAILED, _TRUE
                    errors += 1
                    code_b = VSF_CODES[int(rnd() * len(VSF_CODES))]
        elif state == S_PAUSED:
            # heartbeats while paused: runs like the playing ones, position and watch time frozen
            while True:
                if next_hb <= t:  # the pause took the heartbeat's millisecond
                    next_hb = t + 1
                stop_t = pause_end if pause_end < deadline else deadline
                if next_hb >= stop_t:
                    break
                while next_hb >= until:
                    until = yield
                end = stop_t if stop_t < until else until
                n = (end - next_hb + hb_ms - 1) // hb_ms
                if len(path) <= h + n:
                    extend_path(h + n)
                last = next_hb + (n - 1) * hb_ms
                if last >= emit_from and not count_only:
                    k = (rung, buf_events, stall, errors, state)
                    tpl = hb_tpls.get(k)
                    if tpl is None:
                        tpl = hb_tpls[k] = master % (
                            b"%s", b"heartbeat", b"%s", b"%s", _QUALITY_B[rung], b"%s", _int_b(buf_events),
                            b"%.3f" % (stall / 1000.0), _int_b(errors), b"%s", b"%s", b"%s", b"%s",
                            _KBPS_B[rung], _NULL, _NULL, _NULL, _FALSE, _TRUE, _PS[state], b"%s", b"0",
                            _KBPS_B[rung])
                    run_rows.append((next_hb, n, seq, pos_ms, played, dur_s, uid, 0, 0))
                    run_objs.append((key, tpl))
                    run_bw.extend(path[h + 1 : h + n + 1])
                    if collect:
                        run_facts.append((sess, 0, prev_bitrate, prev_quality, 0))
                seq += n
                h += n
                bw = path[h]
                t = last
                next_hb = last + hb_ms
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
            hb_tpl = None  # stall time is in the template
            if etype == E_REBUF_END:
                rebuf_b = b"%d" % (te - rebuf_start_t)
        if etype == E_HEARTBEAT:  # heartbeats outside playing: the bandwidth path moves on
            next_hb += hb_ms
            if next_hb <= te:
                next_hb = te + hb_ms
            h += 1
            extend_path(h)
            bw = path[h]


@lru_cache(maxsize=64)
def session_stats(heartbeat_ms: int) -> tuple[float, float]:
    """(mean session lifetime in ms, mean events per session), from a fixed calibration run.

    The arrival rate follows from Little's law: concurrent = rate x mean lifetime.
    """
    cfg = SimConfig(seed=0x5EED, heartbeat_interval_s=heartbeat_ms / 1000)
    n, life, events = 1000, 0, 0
    for i in range(n):
        r = _rng(cfg.seed, _T_SESSION, i)
        w = _intended_watch_ms(r)
        gen = _session_events(cfg, _Session(i, 0), r, w, _Chunk(), False, {}, emit_from=0, count_only=True)
        next(gen)
        try:
            gen.send(math.inf)
        except StopIteration as stop:
            end, count = stop.value
        life += end + 1
        events += count
    return life / n, events / n


def arrival_rate_per_ms(cfg: SimConfig) -> float:
    life, events = session_stats(cfg.heartbeat_ms)
    if cfg.target_events_per_s is not None:
        return cfg.target_events_per_s / 1000.0 / events
    return cfg.concurrent_viewers / life


def expected_events_per_s(cfg: SimConfig) -> float:
    """Mean events per second the config produces (in steady state)."""
    return arrival_rate_per_ms(cfg) * 1000.0 * session_stats(cfg.heartbeat_ms)[1]


class _Chunk:
    """What the sessions emit during one chunk, column-wise.

    Lifecycle events (and heartbeats while starting or stalled) arrive rendered, one by one.
    Runs of heartbeats while playing or paused arrive as one row each (first timestamp,
    count, first seq, first position and watch time in ms, title duration, uid, 1 if
    position and watch time advance, ms since the event before the run), plus (session_id, heartbeat
    template) and the run's rendered bandwidths; render() expands them with numpy and
    formats them with C-level map/zip, then merges everything in (timestamp, uid) order.
    """

    __slots__ = ("lc_ts", "lc_uid", "lc_kv", "lc_fact", "run_rows", "run_objs", "run_bw", "run_facts")

    def __init__(self) -> None:
        self.lc_ts: list = []
        self.lc_uid: list = []
        self.lc_kv: list = []
        self.lc_fact: list = []
        self.run_rows: list = []
        self.run_objs: list = []
        self.run_bw: list = []
        self.run_facts: list = []

    def clear(self) -> None:
        for name in self.__slots__:
            getattr(self, name).clear()

    def render(self, secs: dict, hb_ms: int, ws: int, we: float, collect: bool, lines: bool = False) -> tuple:
        """The chunk's events with ws <= ts < we, in (ts, uid) order, and their truth facts (or None).

        As (session_ids, JSONs, facts), two tuples in step; with lines=True as
        (block, count, facts), block the JSON Lines of all of them in one bytes object.
        (One `bytes %` over the whole chunk's joined templates was tried: CPython formats it
        at about 0.85 us per event against 0.5 for per-event formatting plus one join.)
        """
        rows = self.run_rows
        lc_kv = self.lc_kv
        if rows:
            R = np.array(rows, dtype=np.int64)
            n = R[:, 1]
            total = int(n.sum())
            run = np.repeat(np.arange(len(R)), n)
            k = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
            step = k * hb_ms
            ts = R[run, 0] + step
            seq = R[run, 2] + k
            step *= R[run, 7]  # 0 for runs while paused: position and watch time stand still
            pos = (R[run, 3] + step) // 1000
            watch = (R[run, 4] + step) // 1000
            dur = R[run, 5]
            cp = (pos * 20_000 + dur) // (2 * dur)
            uid = R[run, 6]
            # played_ms: the first heartbeat of a run since the event before it, then one interval each
            played = np.where(k == 0, R[run, 8], hb_ms) * R[run, 7]
            seq_l, pos_l, watch_l, played_l = seq.tolist(), pos.tolist(), watch.tolist(), played.tolist()
            big = max(int(seq.max()), int(pos.max()), int(watch.max()), int(played.max())) >= _TABLE
            objs = _pick(run.tolist(), self.run_objs)
            args = zip(
                [_hex6_b(x) for x in seq_l] if big else _pick(seq_l, _HEX6_B),
                _pick((ts // 1000).tolist(), secs),
                _pick((ts % 1000).tolist(), _MS_B),
                _bw_render(self.run_bw),
                [_int_b(x) for x in watch_l] if big else _pick(watch_l, _INT_B),
                [_int_b(x) for x in pos_l] if big else _pick(pos_l, _INT_B),
                _pick(cp.tolist(), _CENTI_B),
                [_int_b(x) for x in seq_l] if big else _pick(seq_l, _INT_B),
                [_int_b(x) for x in played_l] if big else _pick(played_l, _INT_B),
            )
            all_ts = np.concatenate((ts, np.array(self.lc_ts, dtype=np.int64)))
            all_uid = np.concatenate((uid, np.array(self.lc_uid, dtype=np.int64)))
        else:
            objs, args = (), ()
            all_ts = np.array(self.lc_ts, dtype=np.int64)
            all_uid = np.array(self.lc_uid, dtype=np.int64)
        order = np.lexsort((all_uid, all_ts))
        ts_sorted = all_ts[order]
        lo = int(np.searchsorted(ts_sorted, ws, "left"))
        hi = int(np.searchsorted(ts_sorted, we, "left")) if we != math.inf else len(order)
        sel = order[lo:hi].tolist()
        facts = None
        if collect:
            hb_facts = []
            for (sess, first_d, bitrate, quality, adv), (_, nrun, *_rest) in zip(self.run_facts, rows):
                hb_facts.append((sess, E_HEARTBEAT, first_d, 0, bitrate, quality, None, False, False, False))
                hb_facts.extend([(sess, E_HEARTBEAT, hb_ms * adv, 0, bitrate, quality, None, False, False, False)] * (nrun - 1))
            facts = list(_pick(sel, hb_facts + self.lc_fact))
        values = list(map(bytes.__mod__, map(_SECOND, objs), args))
        if lines:  # JSON Lines: no (key, value) pairs; blocks of _LINES_BLOCK events
            values += map(_SECOND, lc_kv)
            picked = _pick(sel, values)
            blocks = [b"\n".join(picked[i : i + _LINES_BLOCK] + (b"",)) for i in range(0, len(picked), _LINES_BLOCK)]
            return blocks, len(sel), facts
        values += map(_SECOND, lc_kv)
        keys = list(map(_FIRST, objs))
        keys += map(_FIRST, lc_kv)
        return _pick(sel, keys), _pick(sel, values), facts


_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def _pick(indexes: list, seq) -> tuple:
    """seq[i] for i in indexes, as a tuple (itemgetter: one C call)."""
    if len(indexes) > 1:
        return itemgetter(*indexes)(seq)
    return tuple(seq[i] for i in indexes)


def _raw(cfg: SimConfig, ws: int, we: float, collect: bool = False, lines: bool = False,
         simulate_only: bool = False) -> Iterator[tuple]:
    """Per chunk of buckets: what _Chunk.render gives for ws <= ts < we, in (ts, uid) order.

    simulate_only (for bench/generator's cost breakdown): yields the number of events the
    chunk holds instead, without expanding or formatting the heartbeat runs (lifecycle
    events are still formatted, inside the sessions).
    """
    lam = arrival_rate_per_ms(cfg)
    seed = cfg.seed
    hb_ms = cfg.heartbeat_ms
    live: list = []
    out = _Chunk()
    secs: dict = {}
    first = (ws - MAX_SESSION_MS) // BUCKET_MS
    chunk_start = first * BUCKET_MS
    # Sessions are advanced and merged a chunk of buckets at a time: longer chunks mean
    # longer heartbeat runs and fewer generator switches; ~20k events per chunk bounds memory.
    per_bucket = lam * BUCKET_MS * session_stats(cfg.heartbeat_ms)[1]
    chunk = max(1, min(10, int(20_000 / max(per_bucket, 1.0))))
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
                gen = _session_events(cfg, _Session(uid, st), r, w, out, collect, secs, ws)
                next(gen)
                live.append(gen)
            i += 1
            t += ra.expovariate(lam)
        if (b + 1) % chunk and b_end < we:
            continue  # keep collecting arrivals until the chunk ends
        if b_end > ws:  # the second prefixes this chunk's events can use
            secs.clear()
            _fill_seconds(secs, chunk_start // 1000, b_end // 1000 + 1)
        chunk_start = b_end
        ended = False
        for gen in live:
            try:
                gen.send(b_end)
            except StopIteration:
                ended = True
        if ended:
            live = [g for g in live if g.gi_frame is not None]
        if simulate_only:
            yield len(out.lc_ts) + sum(row[1] for row in out.run_rows)
        elif b_end > ws:
            yield out.render(secs, hb_ms, ws, we, collect, lines)
        out.clear()


def iter_window(config: SimConfig, window_start: datetime, window_end: datetime, truth=None) -> Iterator[tuple[bytes, bytes]]:
    """(session_id, JSON event) for every event with window_start <= ts < window_end, in time order.

    Stateless: derives every session from (seed, time), so consecutive windows concatenate
    to the one-window stream. Pass a GroundTruth as `truth` to record what was emitted.
    """
    ws, we = to_ms(window_start), to_ms(window_end)
    if we < ws:
        raise SimConfigError(f"window_end {window_end} is before window_start {window_start}")
    return chain.from_iterable(_chunks(config, ws, we, None, truth))


def iter_records(n: int, config: SimConfig, truth=None) -> Iterator[tuple[bytes, bytes]]:
    """The first n events from config.start, as (session_id, JSON event), in time order."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SimConfigError(f"n must be a non-negative integer, got {n!r}")
    return chain.from_iterable(_chunks(config, config.start_ms, float("inf"), n, truth))


def _chunks(config: SimConfig, ws: int, we: float, n: int | None, truth) -> Iterator[Iterator[tuple[bytes, bytes]]]:
    """Per chunk, an iterator of its (session_id, JSON) records; the caller chains them, so
    no Python frame resumes per event."""
    left = n if n is not None else -1
    if not left:
        return
    for keys, values, facts in _raw(config, ws, we, truth is not None):
        m = len(values)
        if 0 < left < m:
            keys, values, m = keys[:left], values[:left], left
        if truth is not None:
            for f in facts[:m]:
                truth.observe(f[0], 0, f[1:])
        yield zip(keys, values)
        left -= m
        if not left:
            return


# Events per JSON Lines block: ~230 KB blocks are recycled by the allocator, where one
# ~12 MB block per chunk was mapped and page-faulted afresh each time (~0.3 us per event).
_LINES_BLOCK = 256


def iter_lines(n: int, config: SimConfig) -> Iterator[bytes]:
    """The first n events as JSON Lines, in blocks of up to _LINES_BLOCK events (for the CLI)."""
    left = n
    if not left:
        return
    for blocks, total, _ in _raw(config, config.start_ms, float("inf"), lines=True):
        for k, block in enumerate(blocks):
            count_ = min(_LINES_BLOCK, total - k * _LINES_BLOCK)
            if left < count_:
                cut = -1
                for _ in range(left):
                    cut = block.index(b"\n", cut + 1)
                block = block[: cut + 1]
                count_ = left
            yield block
            left -= count_
            if not left:
                return


def _fill_seconds(secs: dict, first: int, end: int) -> None:
    """secs[s] = b'YYYY-MM-DDTHH:MM:SS' for first <= s < end (one strftime per minute)."""
    s = first
    while s < end:
        minute = s - s % 60
        head = _second_prefix(minute)[:-2]
        for x in range(s, min(minute + 60, end)):
            secs[x] = head + _INT2_B[x - minute]
        s = minute + 60


_INT2_B = [b"%02d" % i for i in range(60)]
