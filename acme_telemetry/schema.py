"""THE event schema: every field once, with its Glue type and meaning.

Everything else derives from this module: the Glue table columns (data_stack), the
DuckDB view (acme_telemetry.local), the validator and the docs. The first 25 fields are
the plan's columns, in the plan's order and with the plan's Glue types; fields the
simulator adds come after them. Partition keys are not event fields: they come from the
arrival time, as Firehose writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Names shared by the CDK app and the local pipeline.
DATABASE = "acme_telemetry"
TABLE = "streaming_events"
TOPIC = "acme-telemetry"
LAKE_PREFIX = "telemetry/"
ERROR_PREFIX = "errors/"
PARTITION_KEYS: tuple[str, ...] = ("year", "month", "day", "hour")

# Glue type -> DuckDB type.
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "double": "DOUBLE",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
}
# Glue type -> Python types a JSON value may decode to (bool is not an int here).
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "double": (float, int),
    "int": (int,),
    "bigint": (int,),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class Field:
    name: str
    glue_type: str
    doc: str
    nullable: bool = False

    @property
    def duckdb_type(self) -> str:
        return _DUCKDB_TYPES[self.glue_type]

    def accepts(self, value: object) -> bool:
        """True when a decoded JSON value fits this field's type."""
        if value is None:
            return self.nullable
        if isinstance(value, bool) and self.glue_type != "boolean":
            return False
        if self.glue_type == "int" and isinstance(value, int):
            return -(2**31) <= value < 2**31
        return isinstance(value, _PY_TYPES[self.glue_type])


FIELDS: tuple[Field, ...] = (
    # --- the plan's 25 columns: names and Glue types are a contract ---
    Field("event_id", "string", "Unique id of the event (UUID)."),
    Field("event_type", "string", "What happened; one of EVENT_TYPES."),
    Field("event_timestamp", "string", "When the player emitted the event: UTC ISO-8601 with a Z suffix, millisecond precision."),
    Field("customer_id", "string", "Viewer account (PII: never leaves the lake)."),
    Field("title_id", "string", "Title being watched."),
    Field("session_id", "string", "Playback session; the Kafka record key. Fixed per play attempt."),
    Field("device_id", "string", "Device of the customer (PII: never leaves the lake)."),
    Field("title_type", "string", "movie, series or documentary."),
    Field("device_type", "string", "mobile, web, tv or tablet."),
    Field("device_os", "string", "Operating system, consistent with device_type."),
    Field("app_version", "string", "Player app version, fixed per session."),
    Field("quality", "string", "Rendition label (SD, HD, FHD, 4K) of the current ABR rung."),
    Field("bandwidth_mbps", "double", "Measured throughput, a random walk around the connection type's median."),
    Field("buffering_events", "int", "Cumulative rebuffer count in the session (never decreases)."),
    Field("buffering_duration_seconds", "double", "Cumulative stall time in seconds (never decreases)."),
    Field("error_count", "int", "Cumulative error count in the session (never decreases)."),
    Field("watch_duration_seconds", "int", "Cumulative seconds of video played (never decreases)."),
    Field("position_seconds", "int", "Playhead position in the title, in seconds."),
    Field("completion_percentage", "double", "position_seconds / title_duration_seconds * 100."),
    Field("ip_address", "string", "Client IP address (PII: never leaves the lake)."),
    Field("isp", "string", "Internet service provider of ip_address."),
    Field("connection_type", "string", "wifi, mobile, fiber, cable, dsl or satellite; fixed per session."),
    Field("country", "string", "Country of ip_address (ISO 3166-1 alpha-2)."),
    Field("state", "string", "State of ip_address."),
    Field("city", "string", "City of ip_address, in state."),
    # --- added by the simulator; extend here, after the plan's columns ---
    Field("seq", "int", "Per-session sequence number: 0 for the first event, then +1 per event."),
    Field("title_duration_seconds", "int", "Length of the title in seconds."),
    Field("bitrate_kbps", "int", "Video bitrate of the current ABR rung, in kbit/s."),
    Field("startup_time_ms", "int", "Time from play attempt to first frame; set on first_frame, null elsewhere.", nullable=True),
    Field("rebuffer_duration_ms", "int", "Length of the stall that just ended; set on rebuffer_end, null elsewhere.", nullable=True),
    Field("error_code", "string", "Player error code on error events, null elsewhere.", nullable=True),
    Field("fatal", "boolean", "True when the error ended the session."),
    Field("cdn", "string", "CDN serving the session."),
    Field(
        "video_started",
        "boolean",
        "True once the first frame has rendered in this session (CTA-2066 video start); tells exits and failures before video start from later ones.",
    ),
    Field("player_state", "string", "Player state after this event; one of PLAYER_STATES (after CMCD's sta)."),
    # Time since the session's previous event, as player beacons report it (Mux/Conviva
    # heartbeats carry the time since the last beacon): each event alone says how much was
    # played and stalled, so windowed KPIs need no state carried across windows or batches.
    Field(
        "played_ms",
        "int",
        "Video played (player in playing) since the session's previous event; 0 on the first event. Sums to watch_duration_seconds (x1000, within its rounding).",
    ),
    Field(
        "stalled_ms",
        "int",
        "Rebuffering after the first frame (seek buffering excluded) since the session's previous event; 0 on the first event. Sums to buffering_duration_seconds x1000.",
    ),
    Field(
        "played_bitrate_kbps",
        "int",
        "Bitrate of the video played during played_ms: the previous event's bitrate_kbps (this event's on the first); differs from bitrate_kbps only on bitrate_change.",
    ),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
PLAN_COLUMNS: tuple[str, ...] = FIELD_NAMES[:25]
# Fields that must never reach a dashboard or any WebSocket message.
PII_FIELDS: frozenset[str] = frozenset({"customer_id", "device_id", "session_id", "ip_address"})


# --- enumerations: the simulator draws from them and the validator checks against them ---
# The plan's five event types first, then the lifecycle events after CTA-2066 / Mux.
EVENT_TYPES: tuple[str, ...] = (
    "start",  # play attempt (CTA-2066 "play attempt"); seq 0 of every session
    "pause",
    "resume",
    "stop",  # the viewer quits; before first_frame it is an exit before video start
    "complete",  # the title played to its end
    "first_frame",  # video start; carries startup_time_ms
    "heartbeat",  # periodic, every heartbeat interval while the session lives
    "rebuffer_start",
    "rebuffer_end",  # carries rebuffer_duration_ms
    "bitrate_change",  # ABR switched rung
    "seek",  # position jumps (the only event where it may go backwards)
    "error",  # carries error_code; fatal=true ends the session
)
# Events after which a session has ended (error only when fatal).
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset({"stop", "complete"})
# Player states, after CMCD's `sta` key: starting (s), playing (p), paused (a),
# rebuffering (r), ended (e), quit (q), failed (f).
PLAYER_STATES: tuple[str, ...] = ("starting", "playing", "paused", "rebuffering", "ended", "quit", "failed")
TITLE_TYPES: tuple[str, ...] = ("movie", "series", "documentary")
DEVICE_TYPES: tuple[str, ...] = ("mobile", "web", "tv", "tablet")
# device_type -> operating systems it can run (a tv never runs iOS).
DEVICE_OS: dict[str, tuple[str, ...]] = {
    "mobile": ("iOS", "Android"),
    "tablet": ("iPadOS", "Android"),
    "web": ("Windows", "macOS", "Linux", "ChromeOS"),
    "tv": ("tvOS", "Roku", "Android TV", "Tizen", "webOS", "Fire OS"),
}
# Device types that may be 4K-capable; others top out below the 4K rung.
UHD_DEVICE_TYPES: frozenset[str] = frozenset({"tv"})
CONNECTION_TYPES: tuple[str, ...] = ("wifi", "mobile", "fiber", "cable", "dsl", "satellite")
# The ABR ladder, after Apple's HLS authoring specification (16:9, H.264 up to 1080p,
# HEVC for 2160p): (bitrate_kbps, quality label). quality follows the rung.
ABR_LADDER: tuple[tuple[int, str], ...] = (
    (145, "SD"),
    (365, "SD"),
    (730, "SD"),
    (1100, "SD"),
    (2000, "SD"),
    (3000, "HD"),
    (4500, "HD"),
    (6000, "FHD"),
    (7800, "FHD"),
    (16800, "4K"),
)
QUALITY_LABELS: tuple[str, ...] = ("SD", "HD", "FHD", "4K")
QUALITY_OF_BITRATE: dict[int, str] = dict(ABR_LADDER)


def glue_columns() -> list[dict[str, str]]:
    """Columns for the Glue table's StorageDescriptor, in schema order."""
    return [{"name": f.name, "type": f.glue_type, "comment": f.doc[:255]} for f in FIELDS]


def glue_partition_keys() -> list[dict[str, str]]:
    """Partition keys as Glue sees them: strings, zero-padded like the Firehose prefix."""
    return [{"name": k, "type": "string"} for k in PARTITION_KEYS]


def duckdb_columns() -> dict[str, str]:
    """Column name -> DuckDB type, for read_json(columns=...)."""
    return {f.name: f.duckdb_type for f in FIELDS}
