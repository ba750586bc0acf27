"""The built-in demo: a moving workspace of several hundred sessions.

`build_world(seed)` makes a deterministic demo workspace: about 600 members with
1-3 devices each, four networks with 12 gateways across regions, and 11
agentless applications, each reached through one gateway (its connector).

`Simulator.step(now)` returns one `Snapshot` per gateway, empty ones included
(an empty snapshot is how a gateway says "nobody is connected"). The first call
creates about `target_active` sessions, started over the previous hours (a long
tail: many short, some multi-day); each later call ends some and starts others
so that the count wanders around the target, and now and then lets an agent
session use another gateway.

Sessions follow a few profiles, each with its own mean length (a few minutes
for a quick look at an app, hours for a working day, about a day for servers).
Each profile is an M/M/infinity queue: a session ends at a constant rate
(1 / its profile's mean length) and new ones start at `target * share / mean`
per second, so the count settles around the target whatever the time between
calls. At 450 sessions about 1.5 start and 1.5 end per 2 s, while the sessions
on screen have lasted hours on average.

Plain Python: no clock (time is only the `now` passed in), no database, no
threads. Everything is drawn from `random.Random` seeded with `seed`, and sets
are only used for membership, so the same seed and the same sequence of `now`
values give the same snapshots in any process.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from active_sessions.models import ConnectionType, DeviceOS, DeviceType
from active_sessions.sources.types import ClientObservation, GatewayAccess, Snapshot

SOURCE = "simulator"
MEMBER_COUNT = 600

_AGENT = ConnectionType.AGENT.value
_APP = ConnectionType.APP.value

# --------------------------------------------------------------------------- world


@dataclass(frozen=True)
class DemoMember:
    name: str
    email: str
    home_region: str  # the corporate gateway region nearest to them


@dataclass(frozen=True)
class DemoDevice:
    member: str  # DemoMember.name
    name: str  # unique among the member's devices
    type: str  # a DeviceType value
    os: str  # a DeviceOS value
    os_version: str | None = None
    agent_version: str | None = None  # None: an unmanaged device (a browser), no agent

    @property
    def managed(self) -> bool:
        return self.agent_version is not None


@dataclass(frozen=True)
class DemoGateway:
    name: str
    network: str
    region: str
    public_address: str


@dataclass(frozen=True)
class DemoApplication:
    name: str
    protocol: str  # HTTPS, SSH, RDP
    gateway: str  # its connector: the gateway every session of the app enters at


@dataclass(frozen=True)
class DemoWorld:
    domain: str
    members: tuple[DemoMember, ...]
    devices: tuple[DemoDevice, ...]
    gateways: tuple[DemoGateway, ...]
    applications: tuple[DemoApplication, ...]

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(gateway.network for gateway in self.gateways))

    def gateway(self, name: str) -> DemoGateway:
        for gateway in self.gateways:
            if gateway.name == name:
                return gateway
        raise KeyError(name)


CORPORATE = "Corporate"
PRODUCTION = "Production VPC"
LAB = "Engineering Lab"
BRANCHES = "Branch Offices"

_NETWORKS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        CORPORATE,
        (
            ("gw-us-east-1a", "us-east-1"),
            ("gw-eu-west-1a", "eu-west-1"),
            ("gw-ap-southeast-2a", "ap-southeast-2"),
            ("gw-sa-east-1a", "sa-east-1"),
        ),
    ),
    (
        PRODUCTION,
        (
            ("prod-us-east-1b", "us-east-1"),
            ("prod-us-west-2a", "us-west-2"),
            ("prod-eu-central-1a", "eu-central-1"),
        ),
    ),
    (LAB, (("lab-us-west-2b", "us-west-2"), ("lab-eu-central-1b", "eu-central-1"))),
    (
        BRANCHES,
        (
            ("branch-us-east-2a", "us-east-2"),
            ("branch-eu-west-2a", "eu-west-2"),
            ("branch-ap-northeast-1a", "ap-northeast-1"),
        ),
    ),
)

# name, protocol, connector gateway, how often it is used
_APPLICATIONS: tuple[tuple[str, str, str, float], ...] = (
    ("Jira", "HTTPS", "gw-us-east-1a", 16),
    ("Confluence", "HTTPS", "gw-eu-west-1a", 10),
    ("GitLab", "SSH", "lab-us-west-2b", 12),
    ("Grafana", "HTTPS", "prod-us-east-1b", 9),
    ("Salesforce", "HTTPS", "gw-us-east-1a", 10),
    ("Finance RDP", "RDP", "gw-eu-west-1a", 4),
    ("Prod DB Bastion", "SSH", "prod-eu-central-1a", 4),
    ("Kibana", "HTTPS", "prod-us-west-2a", 6),
    ("Build Farm", "SSH", "lab-eu-central-1b", 5),
    ("HR Portal", "HTTPS", "branch-eu-west-2a", 6),
    ("Support Jump Host", "RDP", "branch-ap-northeast-1a", 3),
)
_APP_WEIGHT = {name: weight for name, _, _, weight in _APPLICATIONS}

_HOME_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1")
_HOME_REGION_WEIGHTS = (45, 30, 12, 13)

# Names by origin: first names, last names (", "-separated), how common, the usual home region.
_CULTURES: tuple[tuple[str, str, float, str], ...] = (
    (
        "James, Emily, Michael, Sarah, David, Jessica, Daniel, Olivia, Ryan, Hannah, "
        "Tyler, Megan, Jacob, Ashley, Nathan, Lauren, Brandon, Madison",
        "Smith, Johnson, Williams, Brown, Miller, Davis, Wilson, Anderson, Taylor, "
        "Thomas, Moore, Clark, Harris, Lewis, Walker, Young, Hughes, Cooper",
        18,
        "us-east-1",
    ),
    (
        "Siobhán, Seán, Aoife, Niamh, Ciarán, Róisín, Eoin, Saoirse",
        "O'Brien, Murphy, Kelly, O'Sullivan, Byrne, Gallagher, McCarthy, Ní Bhriain",
        3,
        "eu-west-1",
    ),
    (
        "Jürgen, Jörg, Lena, Lukas, Anna, Matthias, Sophie, Jonas, Käthe, Felix",
        "Müller, Schäfer, Weiß, Schröder, Becker, Hoffmann, Krüger, Wagner, Köhler, Fischer, Groß, Schmidt",
        7,
        "eu-west-1",
    ),
    (
        "Hélène, François, Chloé, Gaël, Élodie, Mathieu, Camille, Amélie, Jérôme, Inès",
        "Dubois, Lefèvre, Moreau, Girard, Faure, Lemaître, Rousseau, Mercier, Chevalier, Bérubé",
        6,
        "eu-west-1",
    ),
    (
        "José, María, Íñigo, Lucía, Sofía, Javier, Andrés, Begoña, Carmen, Raúl",
        "Núñez, Martínez, García, Muñoz, Peña, Rodríguez, Fernández, Gómez, Ibáñez, "
        "Sánchez, Castillo, Ortega",
        8,
        "sa-east-1",
    ),
    (
        "João, Ana, Gonçalo, Luísa, Thiago, Beatriz, Caio, Letícia, Rafael, Júlia",
        "Silva, Gonçalves, Araújo, Conceição, Magalhães, Ribeiro, Pereira, Simões, Carvalho, Souza",
        5,
        "sa-east-1",
    ),
    (
        "Łukasz, Małgorzata, Paweł, Agnieszka, Krzysztof, Zofia, Michał, Katarzyna, Wojciech, Joanna",
        "Wróbel, Kowalczyk, Wójcik, Nowak, Dąbrowski, Kamiński, Błaszczyk, Zieliński",
        4,
        "eu-west-1",
    ),
    (
        "Søren, Åsa, Bjørn, Ingrid, Mikael, Sigrún, Linnéa, Henrik, Astrid, Jónas",
        "Jørgensen, Sjöberg, Öberg, Lindqvist, Håkansson, Nielsen, Andersen, Bergström, Guðmundsson",
        4,
        "eu-west-1",
    ),
    (
        "Zoë, Daan, Sanne, Bram, Fleur, Joris, Noortje, Sem",
        "de Vries, van den Berg, Jansen, Bakker, Visser, van Dijk, de Jong, Smit",
        3,
        "eu-west-1",
    ),
    (
        "Giulia, Marco, Niccolò, Francesca, Luca, Chiara, Matteo, Alessia",
        "Rossi, Bianchi, Esposito, De Luca, Romano, Ricci, Colombo, Galli",
        4,
        "eu-west-1",
    ),
    (
        "Jiří, Tomáš, Kateřina, Lucie, Ondřej, Petra",
        "Dvořák, Novák, Svoboda, Černý, Novotný, Procházka",
        2,
        "eu-west-1",
    ),
    (
        "Çağla, Gökhan, Elif, Mehmet, Ayşe, Emre, Zeynep, Burak",
        "Yılmaz, Öztürk, Şahin, Demir, Kaya, Çelik, Aydın",
        3,
        "eu-west-1",
    ),
    (
        "Priya, Arjun, Ananya, Rahul, Deepika, Vikram, Aisha, Rohan, Kavya, Sanjay, Meera, Aditya",
        "Sharma, Patel, Iyer, Reddy, Gupta, Nair, Singh, Chatterjee, Menon, Desai, Krishnan, Joshi",
        10,
        "ap-southeast-2",
    ),
    (
        "Wei, Fang, Jing, Hao, Yan, Lei, Mei, Jun, Xin, Yu",
        "Wang, Li, Zhang, Liu, Chen, Yang, Huang, Zhao, Wu, Zhou",
        6,
        "ap-southeast-2",
    ),
    (
        "Haruto, Yui, Sōta, Aoi, Ren, Hina, Kaito, Sakura",
        "Satō, Suzuki, Takahashi, Tanaka, Watanabe, Itō, Yamamoto, Nakamura",
        3,
        "ap-southeast-2",
    ),
    (
        "Min-jun, Seo-yeon, Ji-ho, Ha-eun, Do-yun, Soo-ah",
        "Kim, Lee, Park, Choi, Jung, Kang",
        2,
        "ap-southeast-2",
    ),
    (
        "Anh, Minh, Linh, Huy, Thảo, Quân",
        "Nguyễn, Trần, Lê, Phạm, Hoàng, Võ",
        2,
        "ap-southeast-2",
    ),
    (
        "Chinedu, Adaeze, Oluwaseun, Ngozi, Emeka, Funmilayo, Tunde, Chiamaka",
        "Okafor, Adeyemi, Okonkwo, Balogun, Eze, Adebayo, Nwosu",
        4,
        "eu-west-1",
    ),
    (
        "Omar, Layla, Youssef, Fatima, Karim, Nour, Hassan, Salma",
        "Haddad, Al-Sayed, Khalil, Mansour, Nasser, Farouk",
        3,
        "eu-west-1",
    ),
    (
        "Giorgos, Eleni, Dimitris, Katerina, Nikos, Sofia",
        "Papadopoulos, Georgiou, Nikolaidis, Christodoulou, Vlachos",
        2,
        "eu-west-1",
    ),
)
# Always in the demo, first: the names that show accents work end to end.
_FIXED_MEMBERS = (
    ("Zoë", "Müller", "eu-west-1"),
    ("José", "Núñez", "sa-east-1"),
    ("Łukasz", "Wróbel", "eu-west-1"),
)


@dataclass(frozen=True)
class _DeviceKind:
    type: DeviceType
    os: DeviceOS
    models: tuple[str, ...] = ()  # personal devices: "<First>'s <model>"
    fleet: str = ""  # fleet devices: "<fleet>-<number>"
    versions: tuple[str | None, ...] = (None,)
    managed: bool = True


_KINDS: dict[str, _DeviceKind] = {
    "mac-laptop": _DeviceKind(
        DeviceType.LAPTOP, DeviceOS.MACOS, ("MacBook Pro", "MacBook Air"), versions=("15.3", "15.2", "14.7")
    ),
    "win-laptop": _DeviceKind(
        DeviceType.LAPTOP,
        DeviceOS.WINDOWS,
        ("Surface Laptop", "ThinkPad T14", "Dell XPS 13", "HP EliteBook"),
        versions=("11 24H2", "11 23H2", "10 22H2"),
    ),
    "linux-laptop": _DeviceKind(
        DeviceType.LAPTOP,
        DeviceOS.LINUX,
        ("ThinkPad X1 Carbon", "Framework Laptop", "Dell XPS 15"),
        versions=("Ubuntu 24.04", "Fedora 41", "Debian 12", "Arch Linux"),
    ),
    "chromebook": _DeviceKind(
        DeviceType.LAPTOP, DeviceOS.CHROMEOS, ("Chromebook", "Pixelbook Go"), versions=("131", "130")
    ),
    "win-desktop": _DeviceKind(
        DeviceType.DESKTOP, DeviceOS.WINDOWS, fleet="ws-win", versions=("11 24H2", "11 23H2", "10 22H2")
    ),
    "linux-desktop": _DeviceKind(
        DeviceType.DESKTOP, DeviceOS.LINUX, fleet="ws-lin", versions=("Ubuntu 24.04", "Fedora 41")
    ),
    "mac-desktop": _DeviceKind(
        DeviceType.DESKTOP, DeviceOS.MACOS, ("iMac", "Mac mini", "Mac Studio"), versions=("15.3", "14.7")
    ),
    "chromebox": _DeviceKind(DeviceType.DESKTOP, DeviceOS.CHROMEOS, fleet="cbx", versions=("131",)),
    "iphone": _DeviceKind(
        DeviceType.MOBILE,
        DeviceOS.IOS,
        ("iPhone 16", "iPhone 15 Pro", "iPhone 14"),
        versions=("18.2", "18.1", "17.6"),
    ),
    "android-phone": _DeviceKind(
        DeviceType.MOBILE,
        DeviceOS.ANDROID,
        ("Pixel 9", "Pixel 8", "Galaxy S24", "OnePlus 12"),
        versions=("15", "14", "13"),
    ),
    "ipad": _DeviceKind(
        DeviceType.TABLET, DeviceOS.IOS, ("iPad Air", "iPad Pro", "iPad mini"), versions=("18.2", "17.6")
    ),
    "android-tablet": _DeviceKind(
        DeviceType.TABLET, DeviceOS.ANDROID, ("Galaxy Tab S9", "Pixel Tablet"), versions=("15", "14")
    ),
    "linux-server": _DeviceKind(
        DeviceType.SERVER,
        DeviceOS.LINUX,
        fleet="srv-lin",
        versions=("Ubuntu 22.04", "RHEL 9", "Debian 12", "Amazon Linux 2023"),
    ),
    "win-server": _DeviceKind(
        DeviceType.SERVER, DeviceOS.WINDOWS, fleet="srv-win", versions=("Server 2022", "Server 2019")
    ),
    "rpi": _DeviceKind(DeviceType.UNKNOWN, DeviceOS.LINUX, fleet="rpi-lab", versions=("Raspberry Pi OS 12",)),
    "unknown": _DeviceKind(DeviceType.UNKNOWN, DeviceOS.UNKNOWN, ("Unknown device",)),
    # An unmanaged browser, for agentless applications; the model is the browser.
    "browser": _DeviceKind(
        DeviceType.UNKNOWN, DeviceOS.UNKNOWN, ("Chrome", "Firefox", "Safari", "Edge"), managed=False
    ),
}
_PRIMARY_KINDS = {
    "mac-laptop": 28,
    "win-laptop": 26,
    "linux-laptop": 8,
    "chromebook": 4,
    "win-desktop": 7,
    "linux-desktop": 5,
    "mac-desktop": 3,
    "chromebox": 1,
    "iphone": 4,
    "android-phone": 3,
    "ipad": 1,
    "browser": 6,
    "unknown": 1,
    "rpi": 0.5,
}
_SECONDARY_KINDS = {
    "iphone": 24,
    "android-phone": 18,
    "ipad": 8,
    "android-tablet": 4,
    "browser": 14,
    "linux-server": 7,
    "win-server": 2,
    "linux-desktop": 5,
    "win-desktop": 4,
    "mac-laptop": 4,
    "win-laptop": 3,
    "linux-laptop": 3,
    "unknown": 2,
    "rpi": 2,
}
_AGENT_VERSIONS = ("1.42.0", "1.41.3", "1.40.1")

_TRANSLITERATE = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "þ": "th"}
    | {"ı": "i"}
)


def email_local_part(text: str) -> str:
    """ASCII lowercase for an email address: "Núñez" -> "nunez", "O'Brien" -> "obrien"."""
    folded = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    ascii_text = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9-]", "", ascii_text)


def _domain(workspace_label: str) -> str:
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", email_local_part(workspace_label.replace(" ", "-"))))
    slug = slug.strip("-")
    return f"{slug}.example" if slug else "example.com"


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def build_world(seed: int = 7, workspace_label: str = "") -> DemoWorld:
    """The demo workspace for `seed`: the same seed always gives the same world.

    Emails are `first.last@<domain>`, the domain made from `workspace_label`
    ("Acme Corp" -> "acme-corp.example"; none -> "example.com").
    """
    rng = random.Random(seed)
    domain = _domain(workspace_label)

    entries = [(network, name, region) for network, gateways in _NETWORKS for name, region in gateways]
    gateways = tuple(
        DemoGateway(name, network, region, f"192.0.2.{index + 1}")
        for index, (network, name, region) in enumerate(entries)
    )
    applications = tuple(DemoApplication(name, protocol, gw) for name, protocol, gw, _ in _APPLICATIONS)

    people: list[tuple[str, str, str]] = list(_FIXED_MEMBERS)
    names = {f"{first} {last}" for first, last, _ in people}
    culture_weights = [weight for *_, weight, _ in _CULTURES]
    while len(people) < MEMBER_COUNT:
        firsts, lasts, _, region = rng.choices(_CULTURES, weights=culture_weights)[0]
        first, last = rng.choice(firsts.split(", ")), rng.choice(lasts.split(", "))
        if f"{first} {last}" in names:
            continue
        if rng.random() < 0.25:  # people move
            region = rng.choices(_HOME_REGIONS, weights=_HOME_REGION_WEIGHTS)[0]
        names.add(f"{first} {last}")
        people.append((first, last, region))

    members: list[DemoMember] = []
    devices: list[DemoDevice] = []
    emails: set[str] = set()
    fleet_numbers: dict[str, int] = {}
    for first, last, region in people:
        name = f"{first} {last}"
        local = f"{email_local_part(first)}.{email_local_part(last)}"
        email, suffix = f"{local}@{domain}", 1
        while email in emails:
            suffix += 1
            email = f"{local}{suffix}@{domain}"
        emails.add(email)
        members.append(DemoMember(name, email, region))

        count = rng.choices((1, 2, 3), weights=(30, 50, 20))[0]
        kinds = [_pick(rng, _PRIMARY_KINDS)]
        while len(kinds) < count:
            kind = _pick(rng, _SECONDARY_KINDS)
            if kind not in kinds:
                kinds.append(kind)
        for kind_name in kinds:
            kind = _KINDS[kind_name]
            if kind.fleet:
                number = fleet_numbers[kind.fleet] = fleet_numbers.get(kind.fleet, 0) + 1
                device_name = f"{kind.fleet}-{number:03d}"
            elif kind_name == "browser":
                device_name = f"Browser ({rng.choice(kind.models)})"
            elif kind_name == "unknown":
                device_name = kind.models[0]
            else:
                device_name = f"{first}'s {rng.choice(kind.models)}"
            devices.append(
                DemoDevice(
                    member=name,
                    name=device_name,
                    type=kind.type.value,
                    os=kind.os.value,
                    os_version=rng.choice(kind.versions),
                    agent_version=rng.choice(_AGENT_VERSIONS) if kind.managed else None,
                )
            )
    return DemoWorld(domain, tuple(members), tuple(devices), gateways, applications)


# ----------------------------------------------------------------------- sessions

_MINUTE = 60.0
_HOUR = 3600.0
_MAX_INITIAL_AGE = 14 * 24 * _HOUR
_ACCESS_MEAN = 3 * _HOUR  # an agent session reaches one more gateway every 3 h on average
_MAX_ACCESSES = 4

_WORK_TYPES = frozenset({DeviceType.LAPTOP, DeviceType.DESKTOP, DeviceType.UNKNOWN})
_BRIEF_TYPES = _WORK_TYPES | {DeviceType.MOBILE, DeviceType.TABLET}
_HANDHELD_TYPES = frozenset({DeviceType.MOBILE, DeviceType.TABLET})
_SERVER_TYPES = frozenset({DeviceType.SERVER})
_WEB_TYPES = frozenset({DeviceType.LAPTOP, DeviceType.DESKTOP, DeviceType.MOBILE, DeviceType.TABLET})
_TERMINAL_TYPES = frozenset({DeviceType.LAPTOP, DeviceType.DESKTOP})


@dataclass(frozen=True)
class _Profile:
    """A kind of session: who has it, how long it lasts, how much of the crowd it is."""

    name: str
    connection_type: str
    share: float  # of the active sessions, once settled
    mean: float  # mean length, seconds
    device_types: frozenset[str] = frozenset()  # agent profiles: managed devices of these types
    protocols: tuple[str, ...] = ()  # app profiles: applications with these protocols
    rate_in: float = 10_000.0  # median bytes per second
    rate_out: float = 2_000.0


_PROFILES: tuple[_Profile, ...] = (
    _Profile("work", _AGENT, 0.44, 2.5 * _HOUR, _WORK_TYPES, rate_in=25_000, rate_out=6_000),
    _Profile("brief", _AGENT, 0.12, 3 * _MINUTE, _BRIEF_TYPES, rate_in=8_000, rate_out=2_000),
    _Profile("handheld", _AGENT, 0.08, 25 * _MINUTE, _HANDHELD_TYPES, rate_in=12_000, rate_out=1_500),
    _Profile("server", _AGENT, 0.06, 20 * _HOUR, _SERVER_TYPES, rate_in=60_000, rate_out=90_000),
    _Profile("glance", _APP, 0.12, 2.5 * _MINUTE, protocols=("HTTPS",), rate_in=40_000, rate_out=3_000),
    _Profile("task", _APP, 0.10, 40 * _MINUTE, protocols=("HTTPS", "SSH", "RDP"), rate_in=30_000),
    _Profile("long", _APP, 0.08, 3 * _HOUR, protocols=("SSH", "RDP", "HTTPS"), rate_in=20_000),
)

# Where agent sessions enter: the network, then (for people) a gateway near home.
_ENTRY_NETWORK_WEIGHT = {CORPORATE: 60, BRANCHES: 15, LAB: 15, PRODUCTION: 10}
_SERVER_NETWORK_WEIGHT = {PRODUCTION: 3, LAB: 1}
_ACCESS_NETWORK_WEIGHT = {PRODUCTION: 3, LAB: 3, CORPORATE: 1, BRANCHES: 1}
_NEAR_HOME = 4.0

# Office NAT addresses by continent; remote workers come from anywhere.
_OFFICE_NAT = {
    "us": tuple(f"203.0.113.{n}" for n in range(10, 15)),
    "eu": tuple(f"203.0.113.{n}" for n in range(40, 45)),
    "ap": tuple(f"203.0.113.{n}" for n in range(70, 73)),
    "sa": tuple(f"203.0.113.{n}" for n in range(90, 93)),
}
_DOC_V6 = int(ipaddress.IPv6Address("2001:db8::"))
_CGNAT = int(ipaddress.IPv4Address("100.64.0.0"))
_ULA = int(ipaddress.IPv6Address("fd7a:115c:a1e0::"))


def _continent(region: str) -> str:
    return region.split("-", 1)[0]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass
class _Session:
    number: int
    profile: _Profile
    device_index: int
    gateway: DemoGateway
    started_at: datetime
    app: DemoApplication | None
    origin_ip: str | None
    virtual_addresses: tuple[str, ...]
    rate_in: float
    rate_out: float
    bytes_in: float
    bytes_out: float
    accesses: list[GatewayAccess] = field(default_factory=list)

    @property
    def client_key(self) -> str:
        return f"sim={self.number}"


class Simulator:
    """A demo workspace that moves: call `step(now)` every second or two.

    `target_active` is the count the sessions wander around (the world has
    ~1100 devices: far beyond a few hundred sessions, the count falls short).
    `workspace_label` names the email domain of the members (see `build_world`).
    """

    def __init__(self, *, seed: int = 7, target_active: int = 450, workspace_label: str = ""):
        self.seed = seed
        self.target_active = max(0, target_active)
        self._world = build_world(seed, workspace_label)
        self._rng = random.Random(f"{seed}/sessions")
        self._live: dict[int, _Session] = {}  # by number, in start order
        self._next_number = 1
        self._last_now: datetime | None = None
        self._boot_id: str | None = None
        self._busy: set[tuple[int, str]] = set()  # (device index, "agent" or the app's name)

        world = self._world
        self._members = {member.name: member for member in world.members}
        self._gateways = {gateway.name: gateway for gateway in world.gateways}
        managed = [i for i, device in enumerate(world.devices) if device.managed]
        self._agent_devices = {
            profile.name: [i for i in managed if world.devices[i].type in profile.device_types]
            for profile in _PROFILES
            if profile.connection_type == _AGENT
        }
        web = [i for i, device in enumerate(world.devices) if not device.managed or device.type in _WEB_TYPES]
        terminal = [
            i
            for i, device in enumerate(world.devices)
            if not device.managed or device.type in _TERMINAL_TYPES
        ]
        self._app_devices = {"HTTPS": web, "SSH": terminal, "RDP": terminal}

    @property
    def world(self) -> DemoWorld:
        return self._world

    @property
    def active_count(self) -> int:
        return len(self._live)

    @property
    def boot_id(self) -> str | None:
        """Set by the first step: a new simulator (a restarted demo) is a new boot."""
        return self._boot_id

    def step(self, now: datetime) -> list[Snapshot]:
        """Move the world on to `now`, and say who is connected to each gateway."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"naive datetime {now!r}: `now` must be timezone-aware")
        if self._last_now is None:
            self._boot_id = f"sim-{self.seed}-{int(now.timestamp())}"
            self._populate(now)
            self._last_now = now
        elif now > self._last_now:
            self._advance((now - self._last_now).total_seconds(), now)
            self._last_now = now
        return self._snapshots(now)

    # -- the crowd

    def _populate(self, now: datetime) -> None:
        """The sessions already there: each profile's share, started a while ago."""
        rng = self._rng
        counts = [math.floor(self.target_active * profile.share) for profile in _PROFILES]
        for index in range(self.target_active - sum(counts)):
            counts[index % len(counts)] += 1
        starts = [
            (
                now - timedelta(seconds=min(rng.expovariate(1 / profile.mean), _MAX_INITIAL_AGE)),
                order,
                profile,
            )
            for profile, count in zip(_PROFILES, counts, strict=True)
            for order in range(count)
        ]
        self._start_all(starts, now)

    def _advance(self, seconds: float, now: datetime) -> None:
        rng = self._rng
        # Ends: each session ends at the constant rate 1 / its profile's mean length.
        end_chance = {profile.name: -math.expm1(-seconds / profile.mean) for profile in _PROFILES}
        access_chance = -math.expm1(-seconds / _ACCESS_MEAN)
        for number, session in list(self._live.items()):
            if rng.random() < end_chance[session.profile.name]:
                del self._live[number]
                self._busy.discard(self._busy_key(session))
                continue
            session.bytes_in += session.rate_in * seconds * rng.uniform(0.4, 1.6)
            session.bytes_out += session.rate_out * seconds * rng.uniform(0.4, 1.6)
            if session.profile.connection_type == _AGENT and rng.random() < access_chance:
                self._access(session, now)
        # Starts: Poisson arrivals over the elapsed time; those that would have
        # ended already (a long gap between calls) are never seen.
        starts = []
        for profile in _PROFILES:
            window = min(seconds, 10 * profile.mean)
            rate = self.target_active * profile.share / profile.mean
            for order in range(_poisson(rng, rate * window)):
                age = rng.uniform(0, window)
                if rng.random() < math.exp(-age / profile.mean):
                    starts.append((now - timedelta(seconds=age), order, profile))
        self._start_all(starts, now)

    def _start_all(self, starts: list[tuple[datetime, int, _Profile]], now: datetime) -> None:
        starts.sort(key=lambda start: (start[0], start[1], start[2].name))
        for started_at, _, profile in starts:
            self._start(profile, started_at.replace(microsecond=0), now)

    def _busy_key(self, session: _Session) -> tuple[int, str]:
        return (session.device_index, session.app.name if session.app else _AGENT)

    def _start(self, profile: _Profile, started_at: datetime, now: datetime) -> None:
        rng, world = self._rng, self._world
        app: DemoApplication | None = None
        if profile.connection_type == _APP:
            apps = [a for a in world.applications if a.protocol in profile.protocols]
            app = rng.choices(apps, weights=[_APP_WEIGHT[a.name] for a in apps])[0]
            candidates = self._app_devices[app.protocol]
        else:
            candidates = self._agent_devices[profile.name]
        device_index = None
        for _ in range(30):  # a free device: one agent session per device, one per app
            index = rng.choice(candidates) if candidates else None
            if index is not None and (index, app.name if app else _AGENT) not in self._busy:
                device_index = index
                break
        if device_index is None:
            return
        device = world.devices[device_index]
        member = self._members[device.member]
        age = max(0.0, (now - started_at).total_seconds())
        rate_in = profile.rate_in * rng.lognormvariate(0, 0.8)
        rate_out = profile.rate_out * rng.lognormvariate(0, 0.8)
        if app is not None:
            gateway = self._gateways[app.gateway]
            origin_ip, virtual_addresses = None, ()
        else:
            gateway = self._entry_gateway(profile, member)
            origin_ip = self._origin_ip(profile, device, device_index, member)
            virtual_addresses = self._virtual_addresses(device_index)
        session = _Session(
            number=self._next_number,
            profile=profile,
            device_index=device_index,
            gateway=gateway,
            started_at=started_at,
            app=app,
            origin_ip=origin_ip,
            virtual_addresses=virtual_addresses,
            rate_in=rate_in,
            rate_out=rate_out,
            bytes_in=rate_in * age * rng.uniform(0.8, 1.2),
            bytes_out=rate_out * age * rng.uniform(0.8, 1.2),
        )
        if app is None:  # gateways reached before we first saw it
            times = sorted(
                started_at + timedelta(seconds=rng.uniform(0, age))
                for _ in range(min(_poisson(rng, age / _ACCESS_MEAN), _MAX_ACCESSES))
            )
            for first_used_at in times:
                self._access(session, first_used_at.replace(microsecond=0))
        self._next_number += 1
        self._live[session.number] = session
        self._busy.add(self._busy_key(session))

    def _entry_gateway(self, profile: _Profile, member: DemoMember) -> DemoGateway:
        gateways = self._world.gateways
        if profile.name == "server":
            weights = [_SERVER_NETWORK_WEIGHT.get(g.network, 0) for g in gateways]
        else:
            home = _continent(member.home_region)
            weights = [
                _ENTRY_NETWORK_WEIGHT[g.network] * (_NEAR_HOME if _continent(g.region) == home else 1)
                for g in gateways
            ]
        return self._rng.choices(gateways, weights=weights)[0]

    def _origin_ip(self, profile: _Profile, device: DemoDevice, index: int, member: DemoMember) -> str:
        rng = self._rng
        if profile.name == "server":  # a fixed public address per server
            return f"192.0.2.{16 + index % 224}"
        roll = rng.random()
        ipv6_share = 0.45 if device.type in _HANDHELD_TYPES else 0.12
        if roll < ipv6_share:
            return str(ipaddress.IPv6Address(_DOC_V6 | rng.getrandbits(16) << 80 | rng.getrandbits(64)))
        if device.type not in _HANDHELD_TYPES and roll < ipv6_share + 0.45:
            return rng.choice(_OFFICE_NAT[_continent(member.home_region)])
        return f"198.51.100.{rng.randint(1, 254)}"

    @staticmethod
    def _virtual_addresses(index: int) -> tuple[str, ...]:
        """The device's tunnel addresses: the same for each of its sessions."""
        v4 = str(ipaddress.IPv4Address(_CGNAT + 2 + index))
        if index % 3:
            return (v4,)
        return (v4, str(ipaddress.IPv6Address(_ULA + 2 + index)))

    def _access(self, session: _Session, first_used_at: datetime) -> None:
        used = {session.gateway.name} | {access.gateway for access in session.accesses}
        if len(session.accesses) >= _MAX_ACCESSES:
            return
        options = [g for g in self._world.gateways if g.name not in used]
        if not options:
            return
        gateway = self._rng.choices(options, weights=[_ACCESS_NETWORK_WEIGHT[g.network] for g in options])[0]
        session.accesses.append(GatewayAccess(gateway.name, first_used_at, gateway.network, gateway.region))

    # -- output

    def _observation(self, session: _Session) -> ClientObservation:
        device = self._world.devices[session.device_index]
        member = self._members[device.member]
        return ClientObservation(
            client_key=session.client_key,
            member=member.name,
            started_at=session.started_at,
            device=device.name,
            device_type=device.type,
            device_os=device.os,
            member_email=member.email,
            connection_type=session.profile.connection_type,
            app=session.app.name if session.app else None,
            app_protocol=session.app.protocol if session.app else None,
            origin_ip=session.origin_ip,
            virtual_addresses=session.virtual_addresses,
            bytes_in=int(session.bytes_in),
            bytes_out=int(session.bytes_out),
            gateways=tuple(session.accesses),
        )

    def _snapshots(self, now: datetime) -> list[Snapshot]:
        clients: dict[str, list[ClientObservation]] = {g.name: [] for g in self._world.gateways}
        for session in self._live.values():
            clients[session.gateway.name].append(self._observation(session))
        return [
            Snapshot(
                gateway=gateway.name,
                source=SOURCE,
                taken_at=now,
                clients=tuple(clients[gateway.name]),
                network=gateway.network,
                region=gateway.region,
                boot_id=self._boot_id,
            )
            for gateway in self._world.gateways
        ]
