"""Who watches, from where, on what: the fixed facts the simulator draws sessions from.

Customers, devices and titles are derived from (seed, id) on demand, never stored: a
customer always has the same home (state, city, ISP, access type, IP address) and the
same small set of devices, in every session, every window and every process.
`session_facts` draws one session's fixed facts (who, what, where, over which network)
from the session's own random stream; template.py renders them into its JSON template.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from acme_telemetry.schema import DEVICE_OS, DEVICE_TYPES, UHD_DEVICE_TYPES
from acme_telemetry.simulator.model import T_CUSTOMER, T_TITLE, rng

# (state, population in 100k people, cities). US only, as in the plan, but every state
# has real cities: a CA viewer never sits in "Unknown".
STATES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("CA", 395, ("Los Angeles", "San Diego", "San Jose", "San Francisco")),
    ("TX", 291, ("Houston", "San Antonio", "Dallas", "Austin")),
    ("FL", 215, ("Jacksonville", "Miami", "Tampa", "Orlando")),
    ("NY", 202, ("New York", "Buffalo", "Rochester", "Albany")),
    ("PA", 130, ("Philadelphia", "Pittsburgh", "Allentown")),
    ("IL", 128, ("Chicago", "Aurora", "Naperville")),
    ("OH", 118, ("Columbus", "Cleveland", "Cincinnati")),
    ("GA", 107, ("Atlanta", "Augusta", "Savannah")),
    ("NC", 104, ("Charlotte", "Raleigh", "Greensboro")),
    ("MI", 101, ("Detroit", "Grand Rapids", "Lansing")),
    ("NJ", 93, ("Newark", "Jersey City", "Paterson")),
    ("VA", 86, ("Virginia Beach", "Richmond", "Norfolk")),
    ("WA", 77, ("Seattle", "Spokane", "Tacoma")),
    ("AZ", 72, ("Phoenix", "Tucson", "Mesa")),
    ("MA", 70, ("Boston", "Worcester", "Springfield")),
    ("TN", 69, ("Nashville", "Memphis", "Knoxville")),
    ("IN", 68, ("Indianapolis", "Fort Wayne", "Evansville")),
    ("MD", 62, ("Baltimore", "Frederick", "Rockville")),
    ("MO", 62, ("Kansas City", "St. Louis", "Springfield")),
    ("WI", 59, ("Milwaukee", "Madison", "Green Bay")),
    ("CO", 58, ("Denver", "Colorado Springs", "Aurora")),
    ("MN", 57, ("Minneapolis", "Saint Paul", "Rochester")),
    ("SC", 51, ("Charleston", "Columbia", "Greenville")),
    ("AL", 50, ("Birmingham", "Montgomery", "Huntsville")),
    ("LA", 47, ("New Orleans", "Baton Rouge", "Shreveport")),
    ("KY", 45, ("Louisville", "Lexington", "Bowling Green")),
    ("OR", 42, ("Portland", "Eugene", "Salem")),
    ("OK", 40, ("Oklahoma City", "Tulsa", "Norman")),
    ("CT", 36, ("Bridgeport", "New Haven", "Hartford")),
    ("UT", 33, ("Salt Lake City", "West Valley City", "Provo")),
    ("IA", 32, ("Des Moines", "Cedar Rapids", "Davenport")),
    ("NV", 31, ("Las Vegas", "Henderson", "Reno")),
    ("AR", 30, ("Little Rock", "Fort Smith", "Fayetteville")),
    ("MS", 30, ("Jackson", "Gulfport", "Southaven")),
    ("KS", 29, ("Wichita", "Overland Park", "Kansas City")),
    ("NM", 21, ("Albuquerque", "Las Cruces", "Santa Fe")),
    ("NE", 20, ("Omaha", "Lincoln", "Bellevue")),
    ("ID", 18, ("Boise", "Meridian", "Nampa")),
    ("WV", 18, ("Charleston", "Huntington", "Morgantown")),
    ("HI", 15, ("Honolulu", "Hilo", "Kailua")),
    ("NH", 14, ("Manchester", "Nashua", "Concord")),
    ("ME", 14, ("Portland", "Lewiston", "Bangor")),
    ("RI", 11, ("Providence", "Warwick", "Cranston")),
    ("MT", 11, ("Billings", "Missoula", "Bozeman")),
    ("DE", 10, ("Wilmington", "Dover", "Newark")),
    ("SD", 9, ("Sioux Falls", "Rapid City", "Aberdeen")),
    ("ND", 8, ("Fargo", "Bismarck", "Grand Forks")),
    ("AK", 7, ("Anchorage", "Fairbanks", "Juneau")),
    ("DC", 7, ("Washington",)),
    ("VT", 6, ("Burlington", "South Burlington", "Rutland")),
    ("WY", 6, ("Cheyenne", "Casper", "Laramie")),
)
CITIES: dict[str, frozenset[str]] = {s: frozenset(c) for s, _, c in STATES}

# Home access: (connection_type, share of homes, ISPs offering it, first octet per ISP).
HOME_ACCESS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("fiber", 0.27, ("AT&T", "Verizon", "Google Fiber", "Frontier")),
    ("cable", 0.45, ("Comcast", "Spectrum", "Cox", "Optimum")),
    ("dsl", 0.18, ("AT&T", "CenturyLink", "Frontier", "Windstream")),
    ("satellite", 0.10, ("HughesNet", "Viasat", "Starlink")),
)
MOBILE_CARRIERS: tuple[str, ...] = ("Verizon Wireless", "T-Mobile", "AT&T Wireless")
# connection_type -> ISPs that can appear with it. Home wifi rides on any home access.
ISPS_BY_CONNECTION: dict[str, frozenset[str]] = {c: frozenset(i) for c, _, i in HOME_ACCESS}
ISPS_BY_CONNECTION["wifi"] = frozenset(i for _, _, isps in HOME_ACCESS for i in isps)
ISPS_BY_CONNECTION["mobile"] = frozenset(MOBILE_CARRIERS)
# Fictional address blocks: one /8 per ISP so an IP address always maps to its ISP.
_ISPS = sorted(ISPS_BY_CONNECTION["wifi"] | ISPS_BY_CONNECTION["mobile"])
ISP_FIRST_OCTET: dict[str, int] = {isp: 24 + 7 * i for i, isp in enumerate(_ISPS)}

DEVICE_TYPE_WEIGHTS: dict[str, float] = {"mobile": 0.35, "web": 0.30, "tv": 0.25, "tablet": 0.10}
# Most devices per customer (the validator checks a customer never exceeds it).
MAX_DEVICES_PER_CUSTOMER = 4
CDNS: tuple[str, ...] = ("akamai", "cloudfront", "fastly")
# Share of tvs that can play the 4K rung.
UHD_CAPABLE_TV_SHARE = 0.6
# (title_type, share of titles, shortest and longest in minutes)
TITLE_TYPES: tuple[tuple[str, float, int, int], ...] = (("movie", 0.6, 85, 170), ("series", 0.3, 22, 60), ("documentary", 0.1, 45, 110))
COUNTRY = "US"
assert set(DEVICE_TYPE_WEIGHTS) == set(DEVICE_TYPES) == set(DEVICE_OS)


def cumulative(weights: list[float]) -> list[float]:
    """Cumulative weights normalised to end at exactly 1.0, for bisect draws."""
    total = float(sum(weights))
    acc, out = 0.0, []
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


_STATE_CUM = cumulative([w for _, w, _ in STATES])
_ACCESS_CUM = cumulative([w for _, w, _ in HOME_ACCESS])
_DEVICE_TYPES = list(DEVICE_TYPE_WEIGHTS)
_DEVICE_CUM = cumulative(list(DEVICE_TYPE_WEIGHTS.values()))
_TITLE_CUM = cumulative([w for _, w, _, _ in TITLE_TYPES])


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


def _ip(isp: str, bits: int) -> str:
    """An address in the ISP's /8 from 24 random bits (never .0 or .255)."""
    return f"{ISP_FIRST_OCTET[isp]}.{bits >> 16}.{(bits >> 8) & 0xFF}.{1 + (bits & 0xFF) % 254}"


@lru_cache(maxsize=4096)
def customer(seed: int, cid: int) -> Customer:
    """The customer `cid`: a fixed home (location, access, ISP, IP) and 1..4 devices."""
    r = rng(seed, T_CUSTOMER, cid)
    state, _, cities = STATES[bisect_right(_STATE_CUM, r.random())]
    city = cities[int(r.random() * len(cities))]
    access, _, isps = HOME_ACCESS[bisect_right(_ACCESS_CUM, r.random())]
    isp = isps[int(r.random() * len(isps))]
    ip = _ip(isp, r.getrandbits(24))
    devices = []
    for _ in range(1 + min(MAX_DEVICES_PER_CUSTOMER - 1, int(r.expovariate(1.0)))):
        dtype = _DEVICE_TYPES[bisect_right(_DEVICE_CUM, r.random())]
        oses = DEVICE_OS[dtype]
        devices.append(
            Device(
                device_id=uuid4_str(r.getrandbits(128)),
                device_type=dtype,
                device_os=oses[int(r.random() * len(oses))],
                app_version=f"{4 + int(r.random() * 3)}.{int(r.random() * 13)}.{int(r.random() * 31)}",
                uhd=dtype in UHD_DEVICE_TYPES and r.random() < UHD_CAPABLE_TV_SHARE,
            )
        )
    return Customer(f"cust_{cid:06d}", state, city, access, isp, ip, tuple(devices))


@lru_cache(maxsize=16384)
def title(seed: int, tid: int) -> tuple[str, str, int]:
    """(title_id, title_type, duration_seconds) of title `tid`."""
    r = rng(seed, T_TITLE, tid)
    ttype, _, lo, hi = TITLE_TYPES[bisect_right(_TITLE_CUM, r.random())]
    return f"title_{tid:05d}", ttype, int(r.uniform(lo, hi) * 60)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~2 us per session
class SessionFacts:
    """One session's fixed facts: its event fields that never change (named as in the
    schema), the event_id prefix, and the model inputs (4K-capable device, start position)."""

    event_id_prefix: str
    customer_id: str
    title_id: str
    session_id: str
    device_id: str
    title_type: str
    device_type: str
    device_os: str
    app_version: str
    ip_address: str
    isp: str
    connection_type: str
    country: str
    state: str
    city: str
    title_duration_seconds: int
    cdn: str
    uhd: bool
    start_position_s: int


def session_facts(seed: int, customers: int, titles: int, r: random.Random) -> SessionFacts:
    """Draws a session's fixed facts from its random stream `r` (the draws' order is part of the output)."""
    cust = customer(seed, 1 + int(r.random() * customers))
    dev = cust.devices[int(r.random() * len(cust.devices))]
    tid = 1 + int(titles * r.random() ** 3)  # a few titles are popular
    title_id, title_type, dur_s = title(seed, tid)
    # Phones and tablets are on the cellular network a third of the time, else on home wifi;
    # tvs and computers use the home line.
    if dev.device_type in ("mobile", "tablet"):
        if r.random() < 0.35:
            conn = "mobile"
            isp = MOBILE_CARRIERS[int(r.random() * len(MOBILE_CARRIERS))]
            ip = _ip(isp, r.getrandbits(24))
        else:
            conn, isp, ip = "wifi", cust.isp, cust.ip_address
    else:
        conn, isp, ip = cust.access, cust.isp, cust.ip_address
    cdn = CDNS[int(r.random() * len(CDNS))]
    session_id = uuid4_str(r.getrandbits(128))
    hi = r.getrandbits(98)
    # event_id: a UUIDv8 (RFC 9562 custom layout): 82 random bits of the session, then the
    # event's seq in the last 6 hex digits (the kernel writes them), so ids are unique
    # without a draw per event.
    eid_prefix = (
        f"{hi >> 66:08x}-{(hi >> 50) & 0xFFFF:04x}-8{(hi >> 38) & 0xFFF:03x}-{0x8000 | ((hi >> 24) & 0x3FFF):04x}-{hi & 0xFFFFFF:06x}"
    )
    pos0_s = 0 if r.random() < 0.75 else int(r.random() * 0.9 * dur_s)
    return SessionFacts(
        event_id_prefix=eid_prefix,
        customer_id=cust.customer_id,
        title_id=title_id,
        session_id=session_id,
        device_id=dev.device_id,
        title_type=title_type,
        device_type=dev.device_type,
        device_os=dev.device_os,
        app_version=dev.app_version,
        ip_address=ip,
        isp=isp,
        connection_type=conn,
        country=COUNTRY,
        state=cust.state,
        city=cust.city,
        title_duration_seconds=dur_s,
        cdn=cdn,
        uhd=dev.uhd,
        start_position_s=pos0_s,
    )
