"""Who watches, from where, on what: the fixed facts the simulator draws sessions from.

Customers, devices and titles are derived from (seed, id) on demand, never stored: a
customer always has the same home (state, city, ISP, access type, IP address) and the
same small set of devices, in every session, every window and every process.
"""

from __future__ import annotations

from acme_telemetry.schema import DEVICE_OS, DEVICE_TYPES

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
