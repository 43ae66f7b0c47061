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
* **Python sets sessions up; compiled code runs them.** This module draws arrivals and
  each session's fixed facts (customer, device, title, network, geography), renders
  them once into the session's JSON template (JSON-escaped with orjson, split at its 23
  per-event slots) and hands the session to kernel.c, with its model inputs and two
  64-bit seeds. The kernel advances all live sessions one chunk of buckets at a time
  (~20k events), one event at a time, sorts the chunk by (timestamp, session uid) and
  renders it as JSON Lines into one buffer. Memory is bounded by the live sessions plus
  one chunk, not by the number of events. (The pure-Python engine this replaced ran the
  same model at ~0.29M events/s; the issue asks for 25x the plan's generator, ~0.8M/s.)

The player model (CTA-2066 events, CMCD states; the code is kernel.c's decide()): start
(play attempt) -> first_frame after a startup time that grows as bandwidth falls, or an
exit before video start when the viewer's patience runs out, or a video start failure.
While playing, competing exponential hazards, set from the bandwidth at each lifecycle
event, give pause, seek, rebuffer (more likely as bandwidth falls; stalls last longer
too), non-fatal and fatal errors. Heartbeats come every heartbeat interval in every state;
bandwidth is a mean-reverting log random walk around the connection type's median,
sampled at each heartbeat; ABR picks the highest rung at or below 70% of bandwidth, with
hysteresis, and switches a moment after the heartbeat that saw the change. A session
ends with complete (title end), stop (intended watch time reached, quit while paused or
stalled, or the deadline) or a fatal error.
"""

from __future__ import annotations

import ctypes
import math
import random
import threading
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from itertools import chain, count
from operator import itemgetter
from statistics import NormalDist
from typing import Iterator

import numpy as np
import orjson

from acme_telemetry.schema import ABR_LADDER, DEVICE_OS, UHD_DEVICE_TYPES
from acme_telemetry.simulator import kernel
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
# The hazards while playing (pause, seek, errors, rebuffering) and the ABR rule are in
# kernel.c, next to the state machine that uses them.
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


_JSON_STR: dict[str, bytes] = {}


def _json_str(v: str) -> bytes:
    """v as a JSON string (orjson escapes it), memoised: the population's names (states,
    cities, ISPs, operating systems...) are a small fixed set."""
    b = _JSON_STR.get(v)
    if b is None:
        b = orjson.dumps(v)
        if b"%" in b:  # a % would corrupt the session template's slots
            raise ValueError(f"a population string contains '%': {v!r}")
        _JSON_STR[v] = b
    return b


# The session template: %s takes a static field (JSON-rendered), %%s stays a per-event slot.
_MASTER = (
    b'{"event_id":"%s%%s","event_type":"%%s","event_timestamp":"%%s.%%sZ","customer_id":"%s","title_id":"%s",'
    b'"session_id":"%s","device_id":"%s","title_type":%s,"device_type":%s,"device_os":%s,"app_version":"%s",'
    b'"quality":"%%s","bandwidth_mbps":%%s,"buffering_events":%%s,"buffering_duration_seconds":%%s,'
    b'"error_count":%%s,"watch_duration_seconds":%%s,"position_seconds":%%s,"completion_percentage":%%s,'
    b'"ip_address":"%s","isp":%s,"connection_type":%s,"country":"US","state":%s,"city":%s,"seq":%%s,'
    b'"title_duration_seconds":%d,"bitrate_kbps":%%s,"startup_time_ms":%%s,"rebuffer_duration_ms":%%s,'
    b'"error_code":%%s,"fatal":%%s,"cdn":%s,"video_started":%%s,"player_state":"%%s","played_ms":%%s,'
    b'"stalled_ms":%%s,"played_bitrate_kbps":%%s}'
)


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

    # One template per session, its static fields JSON-escaped here; each %s left in it is
    # a slot the kernel fills per event, in this order (kernel.c's render()).
    # Ids, versions and addresses are our own [0-9a-z._-] formats: quoting is their JSON.
    j = _json_str
    master = _MASTER % (
        eid_prefix.encode(), cust.customer_id.encode(), title_id.encode(), session_id.encode(), dev.device_id.encode(),
        j(title_type), j(dev.device_type), j(dev.device_os), dev.app_version.encode(), ip.encode(), j(isp), j(conn),
        j(cust.state), j(cust.city), dur_s, j(cdn))
    sess.key = session_id.encode()
    sess.device_type, sess.connection_type, sess.state = dev.device_type, conn, cust.state
    pos0_s = 0 if r.random() < 0.75 else int(r.random() * 0.9 * dur_s)
    return master, dev, conn, dur_s, pos0_s

# ----------------------------------------------------------------------------- the kernel
_N_SLOTS = 23  # per-event slots of a session template (kernel.c's N_SLOTS)
_NEVER = (1 << 63) - 1
_KERNEL: list = []
_KERNEL_LOCK = threading.Lock()


def _kernel() -> ctypes.CDLL:
    """kernel.c, loaded and given its tables once per process (ctypes releases the GIL, so
    simulations in several threads run in parallel; only this set-up is serialised)."""
    if _KERNEL:
        return _KERNEL[0]
    with _KERNEL_LOCK:
        if not _KERNEL:
            _KERNEL.append(_init_kernel())
    return _KERNEL[0]


def _init_kernel() -> ctypes.CDLL:
    lib = kernel.load()
    # Standard normal quantiles at 8192 equally likely points; the kernel interpolates.
    normal = np.array([NormalDist().inv_cdf((i + 0.5) / 8192) for i in range(8192)], dtype=np.float64)
    ladder = np.array(LADDER_KBPS, dtype=np.float64)
    strings = _ET + _PS + [q.encode() for _, q in ABR_LADDER] + list(VSF_CODES + NONFATAL_CODES + FATAL_CODES)
    offsets = np.zeros(len(strings) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(s) for s in strings])
    rc = lib.k_init(normal.ctypes.data, len(normal), ladder.ctypes.data, len(ladder), b"".join(strings),
                    offsets.ctypes.data, len(strings))
    if rc != 0:
        raise kernel.KernelBuildError(f"k_init refused the simulator's tables (code {rc})")
    return lib


class _Sim:
    """One kernel simulation: its live sessions and the last chunk's events."""

    def __init__(self, cfg: SimConfig, collect: bool) -> None:
        self.lib = _kernel()
        self.h = self.lib.k_new()
        if not self.h:
            raise MemoryError("k_new")
        self.cfg = cfg
        self.collect = collect
        self.keys: list = []  # slot -> session_id bytes
        self.sessions: list = []  # slot -> _Session (ground truth slices)
        self._ip = (ctypes.c_int64 * 10)()
        self._dp = (ctypes.c_double * 7)()
        self._seg = (ctypes.c_int32 * (_N_SLOTS + 2))()

    def __del__(self) -> None:
        h, self.h = getattr(self, "h", None), None
        if h:
            self.lib.k_free(h)

    def add(self, sess: _Session, r: random.Random, watch_ms: int, deadline: int) -> None:
        master, dev, conn, dur_s, pos0_s = _make_session(self.cfg, sess, r)
        median, sigma, latency, extra_rebuf, fatal_mult = NETWORK[conn]
        parts = master.split(b"%s")
        if len(parts) != _N_SLOTS + 1:
            raise AssertionError(f"session template has {len(parts) - 1} slots, expected {_N_SLOTS}")
        ip, dp, seg = self._ip, self._dp, self._seg
        ip[:] = [sess.uid, sess.start, deadline, watch_ms, self.cfg.heartbeat_ms, dur_s, pos0_s, int(dev.uhd),
                 _signed64(r.getrandbits(64)), _signed64(r.getrandbits(64))]
        dp[:] = [median, sigma, latency, extra_rebuf, fatal_mult, DEVICE_STARTUP_MS[dev.device_type],
                 VSF_BASE + VSF_PROB.get(conn, 0.0)]
        acc = 0
        seg[0] = 0
        for i, part in enumerate(parts):
            acc += len(part)
            seg[i + 1] = acc
        seg[_N_SLOTS + 1] = acc
        slot = self.lib.k_add(self.h, ip, dp, b"".join(parts), seg)
        if slot < 0:
            raise MemoryError("k_add")
        while len(self.keys) <= slot:
            self.keys.append(b"")
            self.sessions.append(None)
        self.keys[slot] = sess.key
        if self.collect:
            self.sessions[slot] = sess

    def advance(self, until: int, emit_from: int, emit_to: int, render: bool = True) -> int:
        n = self.lib.k_advance(self.h, until, emit_from, emit_to, int(render))
        if n < 0:
            raise MemoryError("k_advance")
        return n

    def events(self, n: int, m: int) -> np.ndarray:
        """The first m of the chunk's n events in (ts, uid) order, as a structured array (a copy)."""
        if not m:
            return np.empty(0, dtype=kernel.EVENT_DTYPE)
        raw = (ctypes.c_char * (n * kernel.EVENT_DTYPE.itemsize)).from_address(self.lib.k_events(self.h))
        ev = np.frombuffer(raw, dtype=kernel.EVENT_DTYPE, count=n)
        order = np.ctypeslib.as_array(self.lib.k_order(self.h), shape=(n,))
        return ev[order[:m]]

    def slots(self, n: int) -> np.ndarray:
        """The session slot of each of the chunk's n events, in (ts, uid) order."""
        return np.ctypeslib.as_array(self.lib.k_slots(self.h), shape=(n,))

    def offsets(self, n: int) -> np.ndarray:
        return np.ctypeslib.as_array(self.lib.k_offsets(self.h), shape=(n + 1,))

    def text(self, start: int, end: int) -> bytes:
        return ctypes.string_at(self.lib.k_out(self.h) + start, end - start)

    def facts(self, ev: np.ndarray) -> list:
        """(session, fact) per event, as GroundTruth.observe takes them."""
        names = ("slot", "etype", "played_d", "stall_d", "prev_rung", "startup", "vsf", "fatal", "started")
        sessions = self.sessions
        return [
            (sessions[slot], (
                etype, played_d, stall_d, LADDER_KBPS[prev_rung], _QUALITY_B[prev_rung],
                startup if etype == E_FIRST_FRAME else None,
                bool(vsf) and etype == E_ERROR and not started, etype == E_STOP and not started,
                etype == E_ERROR and bool(fatal) and bool(started)))
            for slot, etype, played_d, stall_d, prev_rung, startup, vsf, fatal, started
            in zip(*(ev[k].tolist() for k in names))
        ]


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


_QUALITY_B = [q.encode() for _, q in ABR_LADDER]


@lru_cache(maxsize=64)
def session_stats(heartbeat_ms: int) -> tuple[float, float]:
    """(mean session lifetime in ms, mean events per session), from a fixed calibration run.

    The arrival rate follows from Little's law: concurrent = rate x mean lifetime.
    """
    cfg = SimConfig(seed=0x5EED, heartbeat_interval_s=heartbeat_ms / 1000)
    n = 2000
    sim = _Sim(cfg, False)
    for i in range(n):
        r = _rng(cfg.seed, _T_SESSION, i)
        w = _intended_watch_ms(r)
        sim.add(_Session(i, 0), r, w, _deadline(0, w))
    sim.advance(_NEVER, _NEVER, _NEVER, render=False)
    totals = (ctypes.c_int64 * 3)()
    sim.lib.k_totals(sim.h, totals)
    ended, life, events = totals
    if ended != n:
        raise AssertionError(f"calibration: {ended} of {n} sessions ended")
    return life / n, events / n


def arrival_rate_per_ms(cfg: SimConfig) -> float:
    life, events = session_stats(cfg.heartbeat_ms)
    if cfg.target_events_per_s is not None:
        return cfg.target_events_per_s / 1000.0 / events
    return cfg.concurrent_viewers / life


def expected_events_per_s(cfg: SimConfig) -> float:
    """Mean events per second the config produces (in steady state)."""
    return arrival_rate_per_ms(cfg) * 1000.0 * session_stats(cfg.heartbeat_ms)[1]


def _raw(cfg: SimConfig, ws: int, we: float, collect: bool = False, render: bool = True) -> Iterator[tuple[_Sim, int]]:
    """Per chunk of buckets: (sim, n) once the kernel holds the chunk's n events with
    ws <= ts < we, sorted by (ts, uid) and rendered. The caller reads them before the
    next iteration (which reuses the buffers). render=False (bench/generator's cost
    breakdown) skips the JSON."""
    lam = arrival_rate_per_ms(cfg)
    seed = cfg.seed
    sim = _Sim(cfg, collect)
    emit_to = _NEVER if we == math.inf else int(we)
    first = (ws - MAX_SESSION_MS) // BUCKET_MS
    # Sessions are advanced and merged a chunk of buckets at a time; ~20k events per chunk
    # bound memory. Before ws nothing is rendered, so warm-up runs in 30-minute chunks.
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
            deadline = _deadline(st, w)
            if deadline >= ws:
                sim.add(_Session(uid, st), r, w, deadline)
            i += 1
            t += ra.expovariate(lam)
        if b_end <= ws:
            if (b + 1) % 30 and b_end + BUCKET_MS <= ws:
                continue
            sim.advance(b_end, ws, emit_to, render=False)  # warm-up: nothing to keep yet
            continue
        if (b + 1) % chunk and b_end < we:
            continue  # keep collecting arrivals until the chunk ends
        n = sim.advance(b_end, ws, emit_to, render)
        if n:
            yield sim, n


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
    return chain.from_iterable(_chunks(config, config.start_ms, math.inf, n, truth))


def _chunks(config: SimConfig, ws: int, we: float, n: int | None, truth) -> Iterator[Iterator[tuple[bytes, bytes]]]:
    """Per block of up to _RECORDS_BLOCK events, an iterator of their (session_id, JSON)
    records; the caller chains them, so no Python frame resumes per event. (Blocks, not
    whole chunks: their objects are recycled by the allocator instead of page-faulted.)"""
    left = n if n is not None else -1
    if not left:
        return
    for sim, n_chunk in _raw(config, ws, we, truth is not None):
        m = left if 0 < left < n_chunk else n_chunk
        if truth is not None:
            for sess, fact in sim.facts(sim.events(n_chunk, m)):
                truth.observe(sess, 0, fact)
        offs = sim.offsets(m).tolist()
        slots = sim.slots(n_chunk)[:m].tolist()
        keys = sim.keys
        for i in range(0, m, _RECORDS_BLOCK):
            j = min(i + _RECORDS_BLOCK, m)
            base = offs[i]
            text = sim.text(base, offs[j])
            # each line without its newline (slicing is ~2x faster than bytes.split here)
            values = map(text.__getitem__, map(slice, [o - base for o in offs[i:j]], [o - base - 1 for o in offs[i + 1 : j + 1]]))
            yield zip(itemgetter(*slots[i:j])(keys) if j - i > 1 else (keys[slots[i]],), values)
        left -= m
        if not left:
            return


_RECORDS_BLOCK = 256


# JSON Lines are handed out in blocks of about this many bytes: big enough that the
# per-block cost vanishes, small enough that the allocator recycles them.
_LINES_BLOCK_BYTES = 256 * 1024


def iter_lines(n: int, config: SimConfig) -> Iterator[bytes]:
    """The first n events as JSON Lines, in blocks of whole lines (for the CLI)."""
    left = n
    if not left:
        return
    for sim, m in _raw(config, config.start_ms, math.inf):
        if left < m:
            m = left
        offs = sim.offsets(m)
        # cut points: the first line boundary at or after each block-size step
        steps = np.arange(int(offs[0]) + _LINES_BLOCK_BYTES, int(offs[m]), _LINES_BLOCK_BYTES)
        cuts = np.unique(offs[np.searchsorted(offs, steps)]).tolist()
        prev = int(offs[0])
        for cut in cuts + [int(offs[m])]:
            if cut > prev:
                yield sim.text(prev, cut)
                prev = cut
        left -= m
        if not left:
            return
