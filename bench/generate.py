"""Fill a database of its own with a large, realistic workspace for the benchmark.

The main workspace has 20,000 members with 100,000 active and 1,000,000 ended
sessions; a small second workspace shares the tables so that every query's
workspace scoping is exercised. The schema comes from the project's Alembic
migration, so the benchmark measures the real indexes.

Loading: SQLAlchemy Core executemany in large batches inside one transaction,
with the secondary indexes of the two big tables dropped first and re-created
afterwards (one sorted build per index beats a million random inserts into
each), then ANALYZE so the planner sees realistic statistics. Ids follow start
time, as they do in production where rows are inserted when sessions start.

A finished build records a fingerprint (migration files, generator version,
sizes) in `bench_build`; a later run reuses the database when it still matches.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
import re
import time
import unicodedata
from bisect import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from string import ascii_uppercase

import sqlalchemy as sa

from active_sessions import db as project_db
from active_sessions.models import (
    Application,
    ChangeCounter,
    Device,
    DeviceOS,
    DeviceType,
    EndReason,
    Gateway,
    Member,
    Network,
    SessionGateway,
    Workspace,
    address_sort_key,
    session_search_text,
    text_sort_key,
)
from active_sessions.models import Session as VpnSession

# Bump when the generated data changes, so existing bench databases are rebuilt.
GENERATOR_VERSION = 1
SEED = 20261203
BATCH = 25_000
SOURCE = "bench"
META_TABLE = "bench_build"
BIG_TABLES = (VpnSession.__tablename__, SessionGateway.__tablename__)

Log = Callable[[str], None]


@dataclass(frozen=True)
class WorkspaceSpec:
    name: str
    domain: str
    members: int
    active: int
    ended: int


MAIN = WorkspaceSpec("Bench Workspace", "bench.example", members=20_000, active=100_000, ended=1_000_000)
NEIGHBOUR = WorkspaceSpec("Bench Neighbour", "neighbour.example", members=300, active=2_000, ended=10_000)
WORKSPACES = (MAIN, NEIGHBOUR)

# ------------------------------------------------------------------ the world

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1")
# Where members live (their nearest corporate region), by share.
HOME_REGION_WEIGHTS = {"us-east-1": 38, "us-west-2": 12, "eu-west-1": 22, "eu-central-1": 10}
HOME_REGION_WEIGHTS |= {"ap-southeast-2": 11, "sa-east-1": 7}

# name, network, region, how often it is the entry gateway (before the home-region bias)
GATEWAYS = (
    ("gw-us-east-1a", "Corporate", "us-east-1", 24),
    ("gw-eu-west-1a", "Corporate", "eu-west-1", 18),
    ("gw-ap-southeast-2a", "Corporate", "ap-southeast-2", 8),
    ("gw-sa-east-1a", "Corporate", "sa-east-1", 6),
    ("prod-us-east-1b", "Production VPC", "us-east-1", 4),
    ("prod-us-west-2a", "Production VPC", "us-west-2", 4),
    ("prod-eu-central-1a", "Production VPC", "eu-central-1", 3),
    ("lab-us-west-2b", "Engineering Lab", "us-west-2", 6),
    ("lab-eu-central-1b", "Engineering Lab", "eu-central-1", 5),
    ("branch-us-east-1c", "Branch Offices", "us-east-1", 9),
    ("branch-eu-central-1c", "Branch Offices", "eu-central-1", 7),
    ("branch-ap-southeast-2b", "Branch Offices", "ap-southeast-2", 6),
)
NETWORKS = tuple(dict.fromkeys(network for _, network, _, _ in GATEWAYS))
# Gateways reached after the entry gateway: mostly servers and labs.
ACCESS_NETWORK_WEIGHT = {"Production VPC": 4, "Engineering Lab": 3, "Corporate": 1, "Branch Offices": 1}

# name, protocol, connector gateway, how often it is used
APPLICATIONS = (
    ("Jira", "HTTPS", "gw-us-east-1a", 16),
    ("Confluence", "HTTPS", "gw-eu-west-1a", 10),
    ("GitLab", "SSH", "lab-us-west-2b", 12),
    ("Grafana", "HTTPS", "prod-us-east-1b", 9),
    ("Salesforce", "HTTPS", "gw-us-east-1a", 10),
    ("Finance RDP", "RDP", "gw-eu-west-1a", 4),
    ("Prod DB Bastion", "SSH", "prod-eu-central-1a", 4),
    ("Kibana", "HTTPS", "prod-us-west-2a", 6),
    ("Build Farm", "SSH", "lab-eu-central-1b", 5),
    ("HR Portal", "HTTPS", "branch-eu-central-1c", 6),
    ("Support Jump Host", "RDP", "branch-ap-southeast-2b", 3),
)

# first names, last names, share, usual home region
CULTURES = (
    (
        "James Emily Michael Sarah David Jessica Daniel Olivia Ryan Hannah Tyler Megan Jacob Ashley "
        "Nathan Lauren Brandon Madison Kevin Rachel Justin Amanda Eric Brittany",
        "Smith Johnson Williams Brown Miller Davis Wilson Anderson Taylor Thomas Moore Clark Harris "
        "Lewis Walker Young Hughes Cooper Baker Nelson Carter Mitchell Roberts Turner",
        30,
        "us-east-1",
    ),
    (
        "Siobhán Seán Aoife Niamh Ciarán Róisín Eoin Saoirse Oisín Caoimhe",
        "O'Brien Murphy Kelly O'Sullivan Byrne Gallagher McCarthy Walsh Doyle Lynch",
        4,
        "eu-west-1",
    ),
    (
        "Jürgen Jörg Lena Lukas Anna Matthias Sophie Jonas Käthe Felix Moritz Greta",
        "Müller Schäfer Weiß Schröder Becker Hoffmann Krüger Wagner Köhler Fischer Groß Schmidt Wolf Neumann",
        9,
        "eu-central-1",
    ),
    (
        "Hélène François Chloé Gaël Élodie Mathieu Camille Amélie Jérôme Inès Théo Léa",
        "Dubois Lefèvre Moreau Girard Faure Lemaître Rousseau Mercier Chevalier Bérubé Fontaine Roux",
        7,
        "eu-west-1",
    ),
    (
        "José María Íñigo Lucía Sofía Javier Andrés Begoña Carmen Raúl Pilar Álvaro",
        "Núñez Martínez García Muñoz Peña Rodríguez Fernández Gómez Ibáñez Sánchez Castillo Ortega",
        8,
        "sa-east-1",
    ),
    (
        "João Ana Gonçalo Luísa Thiago Beatriz Caio Letícia Rafael Júlia",
        "Silva Gonçalves Araújo Conceição Magalhães Ribeiro Pereira Simões Carvalho Souza",
        5,
        "sa-east-1",
    ),
    (
        "Łukasz Małgorzata Paweł Agnieszka Krzysztof Zofia Michał Katarzyna Wojciech Joanna",
        "Wróbel Kowalczyk Wójcik Nowak Dąbrowski Kamiński Błaszczyk Zieliński Lewandowski Szymański",
        4,
        "eu-central-1",
    ),
    (
        "Søren Åsa Bjørn Ingrid Mikael Sigrún Linnéa Henrik Astrid Jónas",
        "Jørgensen Sjöberg Öberg Lindqvist Håkansson Nielsen Andersen Bergström Guðmundsson Dahl",
        4,
        "eu-central-1",
    ),
    (
        "Giulia Marco Niccolò Francesca Luca Chiara Matteo Alessia",
        "Rossi Bianchi Esposito De_Luca Romano Ricci Colombo Galli",
        4,
        "eu-central-1",
    ),
    (
        "Priya Arjun Ananya Rahul Deepika Vikram Aisha Rohan Kavya Sanjay Meera Aditya",
        "Sharma Patel Iyer Reddy Gupta Nair Singh Chatterjee Menon Desai Krishnan Joshi",
        12,
        "ap-southeast-2",
    ),
    (
        "Wei Fang Jing Hao Yan Lei Mei Jun Xin Yu",
        "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou",
        7,
        "ap-southeast-2",
    ),
    (
        "Haruto Yui Sōta Aoi Ren Hina Kaito Sakura",
        "Satō Suzuki Takahashi Tanaka Watanabe Itō Yamamoto Nakamura",
        3,
        "ap-southeast-2",
    ),
    (
        "Çağla Gökhan Elif Mehmet Ayşe Emre Zeynep Burak",
        "Yılmaz Öztürk Şahin Demir Kaya Çelik Aydın Arslan",
        3,
        "eu-central-1",
    ),
)


@dataclass(frozen=True)
class DeviceKind:
    type: str
    os: str
    models: tuple[str, ...] = ()  # personal devices: "<First>'s <model>"
    fleet: str = ""  # fleet devices: "<fleet>-<number>"
    browser: bool = False  # an unmanaged browser: agentless app sessions only


KINDS = {
    "mac-laptop": DeviceKind(DeviceType.LAPTOP.value, DeviceOS.MACOS.value, ("MacBook Pro", "MacBook Air")),
    "win-laptop": DeviceKind(
        DeviceType.LAPTOP, DeviceOS.WINDOWS, ("Surface Laptop", "ThinkPad T14", "Dell XPS 13", "HP EliteBook")
    ),
    "linux-laptop": DeviceKind(
        DeviceType.LAPTOP.value, DeviceOS.LINUX.value, ("ThinkPad X1 Carbon", "Framework Laptop")
    ),
    "chromebook": DeviceKind(
        DeviceType.LAPTOP.value, DeviceOS.CHROMEOS.value, ("Chromebook", "Pixelbook Go")
    ),
    "win-desktop": DeviceKind(DeviceType.DESKTOP.value, DeviceOS.WINDOWS.value, fleet="ws-win"),
    "linux-desktop": DeviceKind(DeviceType.DESKTOP.value, DeviceOS.LINUX.value, fleet="ws-lin"),
    "mac-desktop": DeviceKind(
        DeviceType.DESKTOP.value, DeviceOS.MACOS.value, ("iMac", "Mac mini", "Mac Studio")
    ),
    "iphone": DeviceKind(
        DeviceType.MOBILE.value, DeviceOS.IOS.value, ("iPhone 16", "iPhone 15 Pro", "iPhone 14")
    ),
    "android-phone": DeviceKind(
        DeviceType.MOBILE.value, DeviceOS.ANDROID.value, ("Pixel 9", "Galaxy S24", "OnePlus 12")
    ),
    "ipad": DeviceKind(DeviceType.TABLET.value, DeviceOS.IOS.value, ("iPad Air", "iPad Pro", "iPad mini")),
    "android-tablet": DeviceKind(
        DeviceType.TABLET.value, DeviceOS.ANDROID.value, ("Galaxy Tab S9", "Pixel Tablet")
    ),
    "linux-server": DeviceKind(DeviceType.SERVER.value, DeviceOS.LINUX.value, fleet="srv-lin"),
    "win-server": DeviceKind(DeviceType.SERVER.value, DeviceOS.WINDOWS.value, fleet="srv-win"),
    "unknown": DeviceKind(DeviceType.UNKNOWN.value, DeviceOS.UNKNOWN.value, ("Unknown device",)),
    "browser": DeviceKind(
        DeviceType.UNKNOWN, DeviceOS.UNKNOWN, ("Chrome", "Firefox", "Safari", "Edge"), browser=True
    ),
}
PRIMARY_KINDS = {"mac-laptop": 30, "win-laptop": 28, "linux-laptop": 8, "chromebook": 3}
PRIMARY_KINDS |= {"win-desktop": 8, "linux-desktop": 5, "mac-desktop": 3, "browser": 5, "unknown": 1}
SECONDARY_KINDS = {"iphone": 26, "android-phone": 20, "ipad": 8, "android-tablet": 4, "browser": 12}
SECONDARY_KINDS |= {"linux-server": 8, "win-server": 2, "linux-desktop": 4, "win-laptop": 3, "unknown": 2}

# Session length profiles: (share, mean seconds); servers stay connected for days.
PROFILES_BY_TYPE = {
    DeviceType.SERVER: ((1.0, 4 * 86_400),),
    DeviceType.MOBILE: ((0.7, 1_200), (0.3, 4 * 3_600)),
    DeviceType.TABLET: ((0.6, 1_800), (0.4, 3 * 3_600)),
}
DEFAULT_PROFILES = ((0.2, 900), (0.7, 7 * 3_600), (0.1, 2 * 86_400))
MAX_ACTIVE_AGE = 14 * 86_400
ENDED_WINDOW = 60 * 86_400
END_REASONS = {EndReason.DISCONNECTED: 90, EndReason.GATEWAY_SILENT: 6}
END_REASONS |= {EndReason.GATEWAY_RESTARTED: 3, EndReason.REPORTED: 1}


def _email_part(text: str) -> str:
    folded = unicodedata.normalize(
        "NFKD", text.translate(str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "ı": "i"}))
    )
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in folded if not unicodedata.combining(c)).lower())


@dataclass
class MemberRow:
    id: int
    name: str
    email: str
    home_region: str
    devices: list[tuple[int, str, str, str, bool]] = field(
        default_factory=list
    )  # id, name, type, os, browser
    home_ip: str = ""


@dataclass
class WorldIds:
    """The reference rows of one workspace, with the ids they were inserted under."""

    workspace_id: int
    spec: WorkspaceSpec
    networks: dict[str, int]
    gateways: dict[str, int]
    apps: dict[str, int]
    members: list[MemberRow]


class _Ids:
    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def take(self, table: str) -> int:
        value = self.next.get(table, 1)
        self.next[table] = value + 1
        return value


# ------------------------------------------------------------------ build


def fingerprint() -> str:
    """Changes whenever the migration, the generator or the sizes change."""
    digest = hashlib.sha256(f"{GENERATOR_VERSION}|{WORKSPACES!r}".encode())
    for path in sorted((project_db.MIGRATIONS_DIR / "versions").glob("*.py")):
        digest.update(path.name.encode())
        # Regenerating the revision restamps its date; only the schema counts.
        text = "".join(
            line for line in path.read_text().splitlines(True) if not line.startswith("Create Date:")
        )
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def is_current(url: str) -> bool:
    """Whether the database holds a finished build of this generator, schema and size."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(META_TABLE):
                return False
            stored = connection.execute(
                sa.text(f"SELECT value FROM {META_TABLE} WHERE key = 'fingerprint'")
            ).scalar()
            if stored != fingerprint():
                return False
            for spec in WORKSPACES:
                workspace_id = connection.execute(
                    sa.select(Workspace.id).where(Workspace.name == spec.name)
                ).scalar()
                if workspace_id is None:
                    return False
                counts = connection.execute(
                    sa.select(
                        sa.func.count(VpnSession.ended_at),
                        sa.func.count() - sa.func.count(VpnSession.ended_at),
                    ).where(VpnSession.workspace_id == workspace_id)
                ).one()
                if tuple(counts) != (spec.ended, spec.active):
                    return False
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def build(url: str, *, log: Log = print) -> float:
    """Create the schema and load the bench data; returns the seconds it took."""
    began = time.perf_counter()
    _reset(url)
    log("schema: alembic upgrade head")
    project_db.migrate(url)
    engine = _loading_engine(url)
    try:
        with engine.begin() as connection:
            indexes = _drop_secondary_indexes(connection)
            now = datetime.now(UTC)
            ids = _Ids()
            rng = random.Random(SEED)
            worlds = [_insert_world(connection, rng, ids, spec, now) for spec in WORKSPACES]
            _insert_sessions(connection, rng, worlds, now, log)
            log(f"indexes: re-creating {len(indexes)} on {', '.join(BIG_TABLES)}")
            started = time.perf_counter()
            for statement in indexes:
                connection.exec_driver_sql(statement)
            log(f"indexes: done in {time.perf_counter() - started:.1f} s; ANALYZE")
            connection.exec_driver_sql("ANALYZE")
            connection.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"
            )
            connection.execute(
                sa.text(f"INSERT INTO {META_TABLE} (key, value) VALUES ('fingerprint', :value)"),
                {"value": fingerprint()},
            )
        if engine.dialect.name == "sqlite":
            # Back to the app's journal mode so the measurements see what production sees.
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        else:
            _after_postgresql_load(engine)
    finally:
        engine.dispose()
    return time.perf_counter() - began


def _reset(url: str) -> None:
    path = project_db.sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    schema = pg_schema(url)
    if schema in (None, "public"):
        raise SystemExit(
            "refusing to rebuild PostgreSQL's public schema: put the bench in a schema of its own"
        )
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()


def pg_schema(url: str) -> str | None:
    """The schema a PostgreSQL URL's `options=-csearch_path=...` puts the tables in."""
    options = sa.engine.make_url(url).query.get("options") or ""
    for option in options.split() if isinstance(options, str) else options:
        if option.startswith("-csearch_path="):
            return option.removeprefix("-csearch_path=").split(",")[0].strip('"')
    return None


def _after_postgresql_load(engine: sa.Engine) -> None:
    """Sequences past the explicit ids; VACUUM so index-only scans need not visit the heap."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in (Workspace, Network, Gateway, Application, Member, Device, VpnSession, SessionGateway):
            name = table.__tablename__
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
            )
        connection.exec_driver_sql("VACUUM ANALYZE")


def _loading_engine(url: str) -> sa.Engine:
    """An engine tuned for one big load: durability and checks off (bench build only)."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            for pragma in (
                "journal_mode=OFF",
                "synchronous=OFF",
                "foreign_keys=OFF",
                "cache_size=-1000000",  # 1 GB: the index builds sort in memory
                "temp_store=MEMORY",
                "locking_mode=EXCLUSIVE",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    else:

        @sa.event.listens_for(engine, "connect")
        def _settings(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit = off")
                cursor.execute("SET maintenance_work_mem = '512MB'")
            dbapi_connection.commit()

    return engine


def _drop_secondary_indexes(connection: sa.Connection) -> list[str]:
    """Drop the plain and partial indexes of the big tables; returns how to re-create them."""
    if connection.dialect.name == "sqlite":
        rows = connection.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                " AND tbl_name IN ('session', 'sessiongateway')"
            )
        ).all()
    else:
        # Constraint-backed indexes (primary keys, unique constraints) stay.
        rows = connection.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema() AND tablename IN ('session', 'sessiongateway')"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint"
                " WHERE connamespace = current_schema()::regnamespace)"
            )
        ).all()
    for name, _ in rows:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def _insert_world(
    connection: sa.Connection, rng: random.Random, ids: _Ids, spec: WorkspaceSpec, now: datetime
) -> WorldIds:
    workspace_id = ids.take("workspace")
    connection.execute(sa.insert(Workspace), [{"id": workspace_id, "name": spec.name, "created_at": now}])
    networks = {name: ids.take("network") for name in NETWORKS}
    connection.execute(
        sa.insert(Network),
        [{"id": id_, "workspace_id": workspace_id, "name": name} for name, id_ in networks.items()],
    )
    gateways = {name: ids.take("gateway") for name, *_ in GATEWAYS}
    connection.execute(
        sa.insert(Gateway),
        [
            {
                "id": gateways[name],
                "workspace_id": workspace_id,
                "network_id": networks[network],
                "name": name,
                "region": region,
                "public_address": f"198.51.100.{gateways[name]}",
                "last_report_at": now,
                "last_snapshot_at": now,
            }
            for name, network, region, _ in GATEWAYS
        ],
    )
    apps = {name: ids.take("application") for name, *_ in APPLICATIONS}
    connection.execute(
        sa.insert(Application),
        [
            {"id": apps[name], "workspace_id": workspace_id, "name": name, "protocol": protocol}
            for name, protocol, _, _ in APPLICATIONS
        ],
    )
    members = _members(rng, ids, spec)
    connection.execute(
        sa.insert(Member),
        [
            {
                "id": m.id,
                "workspace_id": workspace_id,
                "name": m.name,
                "email": m.email,
                "role": "member",
                "created_at": now,
            }
            for m in members
        ],
    )
    connection.execute(
        sa.insert(Device),
        [
            {
                "id": device_id,
                "workspace_id": workspace_id,
                "member_id": m.id,
                "name": name,
                "type": type_,
                "os": os_,
            }
            for m in members
            for device_id, name, type_, os_, _ in m.devices
        ],
    )
    connection.execute(
        sa.insert(ChangeCounter), [{"workspace_id": workspace_id, "version": 1, "changed_at": now}]
    )
    return WorldIds(workspace_id, spec, networks, gateways, apps, members)


def _members(rng: random.Random, ids: _Ids, spec: WorkspaceSpec) -> list[MemberRow]:
    cultures = [(first.split(), last.split(), region) for first, last, _, region in CULTURES]
    weights = [share for *_, share, _ in CULTURES]
    names: set[str] = set()
    emails: set[str] = set()
    fleet_numbers: dict[str, int] = {}
    members: list[MemberRow] = []
    while len(members) < spec.members:
        firsts, lasts, region = rng.choices(cultures, weights=weights)[0]
        first, last = rng.choice(firsts), rng.choice(lasts).replace("_", " ")
        name = f"{first} {last}"
        if name in names:  # namesakes get a middle initial, as directories do
            name = f"{first} {rng.choice(ascii_uppercase)}. {last}"
            if name in names:
                continue
        names.add(name)
        local = f"{_email_part(first)}.{_email_part(last)}"
        email, suffix = f"{local}@{spec.domain}", 1
        while email in emails:
            suffix += 1
            email = f"{local}{suffix}@{spec.domain}"
        emails.add(email)
        if rng.random() < 0.25:  # people move
            region = rng.choices(list(HOME_REGION_WEIGHTS), weights=list(HOME_REGION_WEIGHTS.values()))[0]
        member = MemberRow(ids.take("member"), name, email, region)
        member.home_ip = str(ipaddress.IPv4Address(rng.randrange(0x0B000000, 0xDF000000)))
        count = rng.choices((1, 2, 3), weights=(30, 50, 20))[0]
        kinds = [rng.choices(list(PRIMARY_KINDS), weights=list(PRIMARY_KINDS.values()))[0]]
        while len(kinds) < count:
            kind = rng.choices(list(SECONDARY_KINDS), weights=list(SECONDARY_KINDS.values()))[0]
            if kind not in kinds:
                kinds.append(kind)
        for kind_name in kinds:
            kind = KINDS[kind_name]
            if kind.fleet:
                number = fleet_numbers[kind.fleet] = fleet_numbers.get(kind.fleet, 0) + 1
                device_name = f"{kind.fleet}-{number:05d}"
            elif kind.browser:
                device_name = f"Browser ({rng.choice(kind.models)})"
            elif kind_name == "unknown":
                device_name = kind.models[0]
            else:
                device_name = f"{first}'s {rng.choice(kind.models)}"
            member.devices.append((ids.take("device"), device_name, kind.type, kind.os, kind.browser))
        members.append(member)
    return members


def _duration(rng: random.Random, device_type: str) -> float:
    profiles = PROFILES_BY_TYPE.get(device_type, DEFAULT_PROFILES)
    pick, acc = rng.random(), 0.0
    for share, mean in profiles:
        acc += share
        if pick <= acc:
            return rng.expovariate(1 / mean) + 5
    return rng.expovariate(1 / profiles[-1][1]) + 5


def _plan(rng: random.Random, worlds: list[WorldIds], now_ts: float) -> list[tuple]:
    """Who connects when: (start, end or None, world, member, device), in start order."""
    plan: list[tuple] = []
    for world_index, world in enumerate(worlds):
        members = world.members
        # A heavy tail: a few members (and their servers) hold many sessions.
        activity = list(accumulate(min(rng.paretovariate(1.3), 60.0) for _ in members))
        for active, count in ((True, world.spec.active), (False, world.spec.ended)):
            for member_index in rng.choices(range(len(members)), cum_weights=activity, k=count):
                devices = members[member_index].devices
                device_index = rng.randrange(len(devices))
                length = _duration(rng, devices[device_index][2])
                if active:
                    start, end = now_ts - min(length, MAX_ACTIVE_AGE), None
                else:
                    start = now_ts - rng.random() * ENDED_WINDOW
                    end = start + length
                    if end >= now_ts:
                        end = now_ts - rng.random() * 60
                        start = min(start, end)
                plan.append((start, end, world_index, member_index, device_index))
    plan.sort(key=lambda item: item[0])
    return plan


@dataclass(frozen=True)
class _Encoding:
    """How rows reach the driver.

    The rows are encoded here the way the column types would encode them (JSON
    as text; on SQLite, timestamps as naive UTC text) and go to the driver's
    executemany under the statement Core compiles from `insert(table)` (on
    PostgreSQL, to COPY): SQLAlchemy's per-row parameter handling would
    otherwise take most of the load time. The app reads them back exactly as if
    it had written them.
    """

    dialect: str
    stamp: Callable[[float], object]
    json: Callable[[list[str]], object] = json.dumps

    def insert(self, connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
        # Columns the rows leave out get their Python-side defaults, as Core would give them.
        defaults = {
            column.name: column.default.arg
            for column in table.columns
            if column.name not in rows[0] and column.default is not None and column.default.is_scalar
        }
        names = [*rows[0], *defaults]
        extra = tuple(defaults.values())
        if self.dialect != "sqlite":
            # COPY: PostgreSQL's bulk path, several times faster than any INSERT.
            columns = ", ".join(names)
            cursor = connection.connection.driver_connection.cursor()
            with cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*row.values(), *extra))
            return
        statement = sa.insert(table).values({name: sa.bindparam(name) for name in names})
        sql = str(statement.compile(dialect=connection.dialect))
        connection.exec_driver_sql(sql, [(*row.values(), *extra) for row in rows])


def _encoding(dialect: str) -> _Encoding:
    if dialect != "sqlite":
        # COPY's text format: the server reads the JSON text as json.
        return _Encoding(dialect, lambda ts: datetime.fromtimestamp(ts, UTC))

    def stamp(ts: float) -> str:
        # SQLAlchemy's SQLite DATETIME storage format, in UTC as UTCDateTime stores it.
        return datetime.fromtimestamp(ts, UTC).isoformat(" ", "microseconds")[:26]

    return _Encoding(dialect, stamp)


def _insert_sessions(
    connection: sa.Connection, rng: random.Random, worlds: list[WorldIds], now: datetime, log: Log
) -> None:
    now_ts = now.timestamp()
    started = time.perf_counter()
    plan = _plan(rng, worlds, now_ts)
    log(f"plan: {len(plan):,} sessions in {time.perf_counter() - started:.1f} s")
    encoding = _encoding(connection.dialect.name)
    sessions_done = links_done = 0
    for sessions, links in _rows(rng, worlds, plan, now_ts, encoding):
        encoding.insert(connection, VpnSession.__table__, sessions)
        encoding.insert(connection, SessionGateway.__table__, links)
        sessions_done += len(sessions)
        links_done += len(links)
        if sessions_done % (BATCH * 8) == 0 or sessions_done == len(plan):
            elapsed = time.perf_counter() - started
            log(
                f"sessions: {sessions_done:>9,} / {len(plan):,}, gateway links {links_done:>9,}"
                f"  ({elapsed:5.1f} s, {sessions_done / elapsed:,.0f} sessions/s)"
            )


def _picker(rng: random.Random, weighted: dict) -> Callable[[], object]:
    """A weighted choice, cheaper than `rng.choices` for one value at a time."""
    values, cumulative = list(weighted), list(accumulate(weighted.values()))
    total, random_ = cumulative[-1], rng.random
    return lambda: values[bisect(cumulative, random_() * total)]


def _rows(
    rng: random.Random, worlds: list[WorldIds], plan: list[tuple], now_ts: float, encoding: _Encoding
) -> Iterator[tuple[list[dict], list[dict]]]:
    """Session and SessionGateway rows for the plan, a batch at a time."""
    region_of = {name: region for name, _, region, _ in GATEWAYS}
    network_of = {name: network for name, network, _, _ in GATEWAYS}
    # Members mostly enter at a gateway of their home region.
    entry_gateway = {
        home: _picker(
            rng, {name: weight * (8 if region == home else 1) for name, _, region, weight in GATEWAYS}
        )
        for home in REGIONS
    }
    accessed_gateway = _picker(
        rng, {name: ACCESS_NETWORK_WEIGHT[network] for name, network, _, _ in GATEWAYS}
    )
    application = _picker(rng, {name: weight for name, *_, weight in APPLICATIONS})
    extra_count = _picker(rng, {0: 62, 1: 33, 2: 5})
    end_reason = _picker(rng, {reason.value: weight for reason, weight in END_REASONS.items()})
    connector = {name: gateway for name, _, gateway, _ in APPLICATIONS}
    office_ips = {
        region: [f"203.0.113.{10 * index + offset}" for offset in range(4)]
        for index, region in enumerate(REGIONS)
    }
    stamp, to_json, random_ = encoding.stamp, encoding.json, rng.random
    no_flags, skew_flags = to_json([]), to_json(["clock skew"])
    sessions: list[dict] = []
    links: list[dict] = []
    link_id = 0
    for session_id, (start, end, world_index, member_index, device_index) in enumerate(plan, start=1):
        world = worlds[world_index]
        member = world.members[member_index]
        device_id, device_name, device_type, device_os, browser = member.devices[device_index]
        started_at = stamp(start)
        if browser or random_() < 0.15:
            connection_type = "app"
            app = application()
            entry = connector[app]
            origin_ip = None
            virtual: list[str] = []
            extras: list[str] = []
        else:
            connection_type, app = "agent", None
            entry = entry_gateway[member.home_region]()
            where = random_()
            if where < 0.45:
                origin_ip = member.home_ip
            elif where < 0.85:
                origin_ip = rng.choice(office_ips[member.home_region])
            elif where < 0.95:
                origin_ip = str(ipaddress.IPv4Address(rng.randrange(0x0B000000, 0xDF000000)))
            else:
                origin_ip = f"2001:db8:{rng.randrange(0x10000):x}::{rng.randrange(1, 0x10000):x}"
            virtual = [f"100.{64 + session_id % 64}.{session_id // 256 % 256}.{session_id % 256}"]
            extras = []
            wanted = extra_count()
            while len(extras) < wanted:
                name = accessed_gateway()
                if name != entry and name not in extras:
                    extras.append(name)
        last_ts = end if end is not None else now_ts - random_() * 30
        active = end is None
        for position, name in enumerate((entry, *extras)):
            link_id += 1
            links.append(
                {
                    "id": link_id,
                    "workspace_id": world.workspace_id,
                    "session_id": session_id,
                    "gateway_id": world.gateways[name],
                    "gateway_name": name,
                    "first_used_at": started_at
                    if position == 0
                    else stamp(start + random_() * (last_ts - start)),
                    "active": active,
                }
            )
        sessions.append(
            {
                "id": session_id,
                "workspace_id": world.workspace_id,
                "member_id": member.id,
                "device_id": device_id,
                "application_id": world.apps[app] if app else None,
                "entry_gateway_id": world.gateways[entry],
                "network_id": world.networks[network_of[entry]],
                "connection_type": connection_type,
                "origin_ip": origin_ip,
                "virtual_addresses": to_json(virtual),
                "started_at": started_at,
                "last_seen_at": stamp(last_ts),
                "ended_at": None if active else stamp(end),
                "end_reason": None if active else end_reason(),
                "bytes_in": int(rng.expovariate(1 / 5e7)),
                "bytes_out": int(rng.expovariate(1 / 1e7)),
                "flags": skew_flags if random_() < 0.002 else no_flags,
                "source": SOURCE,
                "client_key": f"{SOURCE}:{session_id}",
                "member_name": member.name,
                "member_email": member.email,
                "device_name": device_name,
                "device_type": device_type,
                "device_os": device_os,
                "app_name": app,
                "network_name": network_of[entry],
                "region": region_of[entry],
                "entry_gateway_name": entry,
                "gateway_names": to_json([entry, *extras]),
                "search_text": session_search_text(member.name, member.email, device_name, origin_ip),
                "member_sort": text_sort_key(member.name),
                "device_sort": text_sort_key(device_name),
                "origin_sort": address_sort_key(origin_ip),
            }
        )
        if len(sessions) == BATCH:
            yield sessions, links
            sessions, links = [], []
    if sessions:
        yield sessions, links
