"""The viewer model's constants: random streams, session timing, the QoE model's inputs.

The player state machine that uses them (hazards while playing, the ABR rule, the
startup outcome) is kernel.c's decide(); its own constants sit there, next to the code.
What is here is what Python draws or hands to the kernel: per-connection network
figures, per-device startup time, error codes, the event-type and player-state codes, and
when sessions start (arrival buckets) and must end (deadlines).
"""

from __future__ import annotations

import math
import random

from acme_telemetry.schema import ABR_LADDER, EVENT_TYPES, PLAYER_STATES

# Time is cut into arrival buckets of BUCKET_MS, aligned to the Unix epoch; a session ends
# at most MAX_SESSION_MS after it starts (its deadline), so a window replays that far back.
BUCKET_MS = 60_000
MAX_SESSION_MS = 5 * 3600 * 1000

# ----------------------------------------------------------------------------- random streams
# Tags, so customers, titles, buckets and sessions never share a stream.
T_CUSTOMER, T_TITLE, T_BUCKET, T_SESSION = 1, 2, 3, 4
_MASK64 = (1 << 64) - 1


def rng(seed: int, tag: int, ident: int) -> random.Random:
    """The random stream of (seed, tag, ident): the same numbers in every process."""
    return random.Random(((seed & _MASK64) << 72) | (tag << 64) | (ident & _MASK64))


def signed64(v: int) -> int:
    """A 64-bit unsigned draw as the int64 ctypes passes to the kernel."""
    return v - (1 << 64) if v >= 1 << 63 else v


# ----------------------------------------------------------------------------- session timing
def intended_watch_ms(r: random.Random) -> int:
    """How long the viewer means to watch (log-normal, median 25 minutes)."""
    return int(r.lognormvariate(math.log(25 * 60_000), 0.9))


def deadline(start: int, watch_ms: int) -> int:
    """Latest end of a session: it is stopped there if still alive (viewer walked away)."""
    return start + min(MAX_SESSION_MS, 75_000 + 2 * watch_ms + 15 * 60_000)


# ----------------------------------------------------------------------------- QoE model
# connection_type -> (median Mbps, log-sd per heartbeat step, startup latency ms,
#                     extra rebuffers per minute, fatal-error multiplier)
NETWORK: dict[str, tuple[float, float, int, float, float]] = {
    "fiber": (200.0, 0.08, 40, 0.0, 1.0),
    "cable": (90.0, 0.12, 60, 0.0, 1.0),
    "wifi": (45.0, 0.18, 80, 0.02, 1.0),
    "dsl": (10.0, 0.15, 150, 0.03, 1.2),
    "mobile": (18.0, 0.30, 300, 0.08, 2.0),
    "satellite": (8.0, 0.30, 700, 0.10, 2.0),
}
DEVICE_STARTUP_MS: dict[str, int] = {"tv": 900, "web": 600, "mobile": 700, "tablet": 700}
LADDER_KBPS: list[int] = [k for k, _ in ABR_LADDER]
QUALITY_B: list[bytes] = [q.encode() for _, q in ABR_LADDER]
# Video start failure: a base probability plus the connection's share.
VSF_PROB: dict[str, float] = {"satellite": 0.025, "mobile": 0.02, "dsl": 0.013}
VSF_BASE = 0.008
# Error codes as JSON strings, in kernel.c's order: video start failure, non-fatal, fatal.
VSF_CODES = (b'"MANIFEST_LOAD_ERROR"', b'"DRM_LICENSE_FAILED"', b'"MEDIA_ERR_SRC_NOT_SUPPORTED"')
NONFATAL_CODES = (b'"SEGMENT_RETRY"', b'"CDN_FAILOVER"', b'"DECODER_RECOVERED"')
FATAL_CODES = (b'"MEDIA_ERR_DECODE"', b'"MEDIA_ERR_NETWORK"', b'"DRM_KEY_EXPIRED"')

# ----------------------------------------------------------------------------- kernel codes
# kernel.c's enums; the kernel's string tables are handed over in these orders.
KERNEL_EVENT_TYPES = (
    "start",
    "pause",
    "resume",
    "stop",
    "complete",
    "first_frame",
    "heartbeat",
    "rebuffer_start",
    "rebuffer_end",
    "bitrate_change",
    "seek",
    "error",
)
KERNEL_PLAYER_STATES = ("starting", "playing", "paused", "rebuffering", "ended", "quit", "failed")
if KERNEL_EVENT_TYPES != EVENT_TYPES or KERNEL_PLAYER_STATES != PLAYER_STATES:
    raise ImportError("schema.EVENT_TYPES / PLAYER_STATES no longer match kernel.c's enums (model.KERNEL_*): change both together")
(E_START, E_PAUSE, E_RESUME, E_STOP, E_COMPLETE, E_FIRST_FRAME, E_HEARTBEAT, E_REBUF_START, E_REBUF_END, E_BITRATE, E_SEEK, E_ERROR) = (
    range(len(KERNEL_EVENT_TYPES))
)
S_STARTING, S_PLAYING, S_PAUSED, S_REBUF, S_ENDED, S_QUIT, S_FAILED = range(len(KERNEL_PLAYER_STATES))
EVENT_TYPE_B: list[bytes] = [t.encode() for t in EVENT_TYPES]
PLAYER_STATE_B: list[bytes] = [s.encode() for s in PLAYER_STATES]
