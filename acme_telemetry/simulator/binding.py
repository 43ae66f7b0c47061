"""The ctypes binding of kernel.c: typed functions, layout checks, the model's tables, and Sim.

`load()` loads the library kernel.py built (once per process), types its functions and
checks that both sides agree, field by field, before anything runs:

* EVENT_DTYPE (how numpy reads the kernel's event_t) against the kernel's own table of
  event_t fields (name, offset, size, integer or floating point: k_event_field);
* the session template's slots (template.SLOT_FIELDS, derived from schema.FIELDS) against
  the fields the kernel's render() fills (k_slot_field).

A mismatch raises KernelBuildError naming the field. Then it hands the kernel the model's
tables (normal quantiles, the ABR ladder, the label strings). ctypes releases the GIL
during kernel calls, so simulations in several threads run in parallel; only this set-up
is serialised.
"""

from __future__ import annotations

import ctypes
import random
import threading
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from acme_telemetry.simulator import kernel, model, template
from acme_telemetry.simulator.incidents import Incident
from acme_telemetry.simulator.kernel import KernelBuildError
from acme_telemetry.simulator.population import SessionFacts
from acme_telemetry.simulator.truth import Fact

# numpy view of kernel.c's event_t (checked field by field against k_event_field at load)
EVENT_DTYPE = np.dtype(
    [(f, np.int64) for f in ("ts", "uid", "stall", "played", "pos_ms", "played_d", "stall_d")]
    + [("bw", np.float64)]
    + [
        (f, np.int32)
        for f in (
            "slot",
            "etype",
            "state",
            "seq",
            "rung",
            "prev_rung",
            "buf_events",
            "errors",
            "startup_out",
            "rebuf_out",
            "code",
            "fatal",
            "started",
            "dur_s",
            "startup",
            "vsf",
        )
    ]
)
NEVER = (1 << 63) - 1  # kernel.c's NEVER: "no time limit"

_P, _I64, _I32, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_int
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "k_init": (_INT, [_P, _INT, _P, _INT, ctypes.c_char_p, _P, _INT]),
    "k_new": (_P, []),
    "k_free": (None, [_P]),
    "k_add": (_I32, [_P, _P, _P, ctypes.c_char_p, _P]),
    "k_advance": (_I64, [_P, _I64, _I64, _I64, _INT]),
    "k_live": (_I64, [_P]),
    "k_out": (_P, [_P]),
    "k_offsets": (ctypes.POINTER(_I64), [_P]),
    "k_order": (ctypes.POINTER(_I64), [_P]),
    "k_slots": (ctypes.POINTER(_I32), [_P]),
    "k_events": (_P, [_P]),
    "k_event_size": (_INT, []),
    "k_event_fields": (_INT, []),
    "k_event_field": (ctypes.c_char_p, [_INT, ctypes.POINTER(_I32), ctypes.POINTER(_I32), ctypes.POINTER(_I32)]),
    "k_n_slots": (_INT, []),
    "k_slot_field": (ctypes.c_char_p, [_INT]),
    "k_totals": (None, [_P, _P]),
}

_LIB: list[ctypes.CDLL] = []
_LOCK = threading.Lock()


def event_layout(lib: ctypes.CDLL) -> list[tuple[str, int, int, str]]:
    """(name, offset, size, kind 'i' or 'f') of each event_t field, as the kernel was compiled."""
    off, size, kind = _I32(), _I32(), _I32()
    out = []
    for i in range(lib.k_event_fields()):
        name = lib.k_event_field(i, ctypes.byref(off), ctypes.byref(size), ctypes.byref(kind))
        out.append((name.decode(), off.value, size.value, chr(kind.value)))
    return out


def dtype_layout(dtype: np.dtype[Any]) -> list[tuple[str, int, int, str]]:
    """The same table for a numpy structured dtype."""
    assert dtype.names is not None and dtype.fields is not None
    return [(n, dtype.fields[n][1], dtype.fields[n][0].itemsize, dtype.fields[n][0].kind) for n in dtype.names]


def check_event_layout(lib: ctypes.CDLL, dtype: np.dtype[Any] = EVENT_DTYPE) -> None:
    """KernelBuildError naming the first field where `dtype` and the kernel's event_t differ."""
    c_fields, py_fields = event_layout(lib), dtype_layout(dtype)
    c_by_name = {f[0]: f for f in c_fields}
    for name, off, size, kind in py_fields:
        c = c_by_name.get(name)
        if c is None:
            raise KernelBuildError(f"event field {name!r} of EVENT_DTYPE is not in kernel.c's event_t")
        if c[1:] != (off, size, kind):
            raise KernelBuildError(
                f"event field {name!r}: kernel.c has offset {c[1]}, size {c[2]}, kind {c[3]!r}; "
                f"EVENT_DTYPE has offset {off}, size {size}, kind {kind!r}"
            )
    for name, *_ in c_fields:
        if name not in dtype.fields:  # type: ignore[operator]
            raise KernelBuildError(f"event field {name!r} of kernel.c's event_t is not in EVENT_DTYPE")
    if lib.k_event_size() != dtype.itemsize:
        raise KernelBuildError(f"kernel event size {lib.k_event_size()} != {dtype.itemsize} (EVENT_DTYPE)")


def kernel_slot_fields(lib: ctypes.CDLL) -> tuple[str, ...]:
    """The schema field of each slot kernel.c's render() fills, in order."""
    return tuple(lib.k_slot_field(i).decode() for i in range(lib.k_n_slots()))


def check_slots(lib: ctypes.CDLL, slots: tuple[str, ...] = template.SLOT_FIELDS) -> None:
    """KernelBuildError naming the first slot where the template and kernel.c's render() differ."""
    c_slots = kernel_slot_fields(lib)
    for i, (ours, theirs) in enumerate(zip(slots, c_slots, strict=False)):
        if ours != theirs:
            raise KernelBuildError(f"template slot {i} is {ours!r} (from schema.FIELDS) but kernel.c renders {theirs!r} there")
    if len(slots) != len(c_slots):
        raise KernelBuildError(
            f"the template has {len(slots)} per-event slots, kernel.c renders {len(c_slots)}: "
            f"{', '.join(slots[len(c_slots) :] or c_slots[len(slots) :])} on one side only"
        )


def open_library(path: str) -> ctypes.CDLL:
    """A kernel library with its functions typed and its layouts checked (no tables yet)."""
    lib = ctypes.CDLL(path)
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    check_event_layout(lib)
    check_slots(lib)
    return lib


def load() -> ctypes.CDLL:
    """The kernel, loaded, checked and given the model's tables once per process."""
    if _LIB:
        return _LIB[0]
    with _LOCK:
        if not _LIB:
            lib = open_library(str(kernel.library_path()))
            _init_tables(lib)
            _LIB.append(lib)
    return _LIB[0]


def _init_tables(lib: ctypes.CDLL) -> None:
    # Standard normal quantiles at 8192 equally likely points; the kernel interpolates.
    normal = np.array([NormalDist().inv_cdf((i + 0.5) / 8192) for i in range(8192)], dtype=np.float64)
    ladder = np.array(model.LADDER_KBPS, dtype=np.float64)
    strings = model.EVENT_TYPE_B + model.PLAYER_STATE_B + model.QUALITY_B + list(model.VSF_CODES + model.NONFATAL_CODES + model.FATAL_CODES)
    offsets = np.zeros(len(strings) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(s) for s in strings])
    rc = lib.k_init(normal.ctypes.data, len(normal), ladder.ctypes.data, len(ladder), b"".join(strings), offsets.ctypes.data, len(strings))
    if rc != 0:
        raise KernelBuildError(f"k_init refused the simulator's tables (code {rc})")


class Session:
    """Identity and slices of one session (what GroundTruth needs), fixed for its whole life."""

    __slots__ = ("uid", "start", "key", "device_type", "connection_type", "state", "cdn", "isp")

    def __init__(self, uid: int, start: int, facts: SessionFacts) -> None:
        self.uid = uid
        self.start = start
        self.key = facts.session_id.encode()
        self.device_type, self.connection_type, self.state = facts.device_type, facts.connection_type, facts.state
        self.cdn, self.isp = facts.cdn, facts.isp


class Sim:
    """One kernel simulation: its live sessions and the last chunk's events."""

    def __init__(self, heartbeat_ms: int, collect: bool) -> None:
        self.lib = load()
        self.h = self.lib.k_new()
        if not self.h:
            raise MemoryError("k_new")
        self.heartbeat_ms = heartbeat_ms
        self.collect = collect
        self.keys: list[bytes] = []  # slot -> session_id bytes
        self.sessions: list[Session | None] = []  # slot -> Session (ground truth slices)
        self._ip = (ctypes.c_int64 * 12)()
        self._dp = (ctypes.c_double * 10)()
        self._seg = (ctypes.c_int32 * (template.N_SLOTS + 2))()

    def __del__(self) -> None:
        h, self.h = getattr(self, "h", None), None
        if h:
            self.lib.k_free(h)

    def add(
        self, uid: int, start: int, facts: SessionFacts, r: random.Random, watch_ms: int, deadline: int, incident: Incident | None = None
    ) -> None:
        """Hands a session to the kernel: its template, its model inputs and two seeds drawn
        from r; and the incident on its slice, if any (simulator.incidents)."""
        parts = template.session_parts(facts)
        conn, dur_s = facts.connection_type, facts.title_duration_seconds
        median, sigma, latency_ms, extra_rebuf, fatal_mult = model.NETWORK[conn]
        latency = float(latency_ms)
        vsf_p = model.VSF_BASE + model.VSF_PROB.get(conn, 0.0)
        inc_from = inc_to = NEVER
        inc = (0.0, 1.0, 1.0)
        if incident is not None:
            eff = incident.effect
            inc_from, inc_to = incident.start_ms, incident.end_ms
            inc = (eff.fatal_per_ms, eff.rebuffer_factor, eff.stall_factor)
            if incident.active(start):  # the attempt starts during the incident
                vsf_p = max(vsf_p, eff.vsf_prob)
                latency = latency + eff.extra_startup_ms
        ip, dp, seg = self._ip, self._dp, self._seg
        ip[:] = [
            uid,
            start,
            deadline,
            watch_ms,
            self.heartbeat_ms,
            dur_s,
            facts.start_position_s,
            int(facts.uhd),
            model.signed64(r.getrandbits(64)),
            model.signed64(r.getrandbits(64)),
            inc_from,
            inc_to,
        ]
        dp[:] = [
            median,
            sigma,
            latency,
            extra_rebuf,
            fatal_mult,
            model.DEVICE_STARTUP_MS[facts.device_type],
            vsf_p,
            *inc,
        ]
        acc = 0
        seg[0] = 0
        for i, part in enumerate(parts):
            acc += len(part)
            seg[i + 1] = acc
        seg[template.N_SLOTS + 1] = acc
        slot = self.lib.k_add(self.h, ip, dp, b"".join(parts), seg)
        if slot < 0:
            raise MemoryError("k_add")
        while len(self.keys) <= slot:
            self.keys.append(b"")
            self.sessions.append(None)
        sess = Session(uid, start, facts)
        self.keys[slot] = sess.key
        if self.collect:
            self.sessions[slot] = sess

    def advance(self, until: int, emit_from: int, emit_to: int, render: bool = True) -> int:
        """Runs every live session up to `until`; keeps (and renders) the events with
        emit_from <= ts < emit_to, sorted by (ts, uid). Returns how many."""
        n: int = self.lib.k_advance(self.h, until, emit_from, emit_to, int(render))
        if n < 0:
            raise MemoryError("k_advance")
        return n

    def totals(self) -> tuple[int, int, int]:
        """(ended sessions, their summed lifetimes in ms, their summed events)."""
        out = (ctypes.c_int64 * 3)()
        self.lib.k_totals(self.h, out)
        return out[0], out[1], out[2]

    def events(self, n: int, m: int) -> npt.NDArray[np.void]:
        """The first m of the chunk's n events in (ts, uid) order, as a structured array (a copy)."""
        if not m:
            return np.empty(0, dtype=EVENT_DTYPE)
        raw = (ctypes.c_char * (n * EVENT_DTYPE.itemsize)).from_address(self.lib.k_events(self.h))
        ev = np.frombuffer(memoryview(raw), dtype=EVENT_DTYPE, count=n)
        order = np.ctypeslib.as_array(self.lib.k_order(self.h), shape=(n,))
        out: npt.NDArray[np.void] = ev[order[:m]]
        return out

    def slots(self, n: int) -> npt.NDArray[np.int32]:
        """The session slot of each of the chunk's n events, in (ts, uid) order."""
        return np.ctypeslib.as_array(self.lib.k_slots(self.h), shape=(n,))

    def offsets(self, n: int) -> npt.NDArray[np.int64]:
        """Where each of the first n rendered lines starts in the output (n + 1 offsets)."""
        return np.ctypeslib.as_array(self.lib.k_offsets(self.h), shape=(n + 1,))

    def text(self, start: int, end: int) -> bytes:
        return ctypes.string_at(self.lib.k_out(self.h) + start, end - start)

    def facts(self, ev: npt.NDArray[np.void]) -> list[tuple[Session, int, Fact]]:
        """(session, timestamp ms, fact) per event, as GroundTruth.observe takes them."""
        names = ("slot", "ts", "etype", "played_d", "stall_d", "prev_rung", "startup", "vsf", "fatal", "started")
        sessions = self.sessions
        ladder, quality = model.LADDER_KBPS, model.QUALITY_B
        e_first, e_error, e_stop = model.E_FIRST_FRAME, model.E_ERROR, model.E_STOP
        out: list[tuple[Session, int, Fact]] = []
        for slot, ts, etype, played_d, stall_d, prev_rung, startup, vsf, fatal, started in zip(
            *(ev[k].tolist() for k in names), strict=True
        ):
            sess = sessions[slot]
            assert sess is not None
            out.append(
                (
                    sess,
                    ts,
                    (
                        etype,
                        played_d,
                        stall_d,
                        ladder[prev_rung],
                        quality[prev_rung],
                        startup if etype == e_first else None,
                        bool(vsf) and etype == e_error and not started,
                        etype == e_stop and not started,
                        etype == e_error and bool(fatal) and bool(started),
                    ),
                )
            )
        return out
