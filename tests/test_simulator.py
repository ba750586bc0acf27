"""The demo simulator: its world, and the sessions it moves through time."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from active_sessions.models import ConnectionType, DeviceOS, DeviceType
from active_sessions.sources import simulator as simulator_module
from active_sessions.sources.simulator import MEMBER_COUNT, Simulator, build_world
from active_sessions.sources.types import ClientObservation, Snapshot
from tests.paths import PROJECT_ROOT

T0 = datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=UTC)
STEPS = 200
STEP = timedelta(seconds=2)
TARGET = 450

DOCUMENTATION_RANGES = [
    ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "2001:db8::/32")
]
TUNNEL_RANGES = [ipaddress.ip_network(n) for n in ("100.64.0.0/10", "fd00::/8")]

# Which OS each device type may run.
PLAUSIBLE = {
    DeviceOS.IOS: {DeviceType.MOBILE, DeviceType.TABLET},
    DeviceOS.ANDROID: {DeviceType.MOBILE, DeviceType.TABLET},
    DeviceOS.MACOS: {DeviceType.LAPTOP, DeviceType.DESKTOP},
    DeviceOS.CHROMEOS: {DeviceType.LAPTOP, DeviceType.DESKTOP},
    DeviceOS.WINDOWS: {DeviceType.LAPTOP, DeviceType.DESKTOP, DeviceType.SERVER},
    DeviceOS.LINUX: {DeviceType.LAPTOP, DeviceType.DESKTOP, DeviceType.SERVER, DeviceType.UNKNOWN},
    DeviceOS.UNKNOWN: {DeviceType.UNKNOWN},
}

Run = list[tuple[datetime, list[Snapshot]]]


def run_simulator(simulator: Simulator, nows: list[datetime]) -> Run:
    return [(now, simulator.step(now)) for now in nows]


def regular_nows(count: int = STEPS + 1) -> list[datetime]:
    return [T0 + i * STEP for i in range(count)]


def clients(snapshots: list[Snapshot]) -> list[tuple[Snapshot, ClientObservation]]:
    return [(snapshot, client) for snapshot in snapshots for client in snapshot.clients]


@pytest.fixture(scope="module")
def world():
    return build_world(7)


@pytest.fixture(scope="module")
def run() -> Run:
    """The default demo, first step then 200 steps of 2 s."""
    return run_simulator(Simulator(seed=7, target_active=TARGET), regular_nows())


# ------------------------------------------------------------------------ world


def test_members_have_varied_unique_names_and_first_last_emails(world):
    names = [member.name for member in world.members]
    emails = [member.email for member in world.members]
    assert len(names) == MEMBER_COUNT
    assert 550 <= MEMBER_COUNT <= 650
    assert len(set(names)) == len(names)
    assert len(set(emails)) == len(emails)
    by_name = {member.name: member for member in world.members}
    assert by_name["Zoë Müller"].email == "zoe.muller@example.com"
    assert by_name["José Núñez"].email == "jose.nunez@example.com"
    assert by_name["Łukasz Wróbel"].email == "lukasz.wrobel@example.com"
    for email in emails:
        assert re.fullmatch(r"[a-z0-9-]+\.[a-z0-9-]+[0-9]*@example\.com", email), email
    assert sum(not name.isascii() for name in names) >= 60
    assert len({name.split(" ")[-1] for name in names}) >= 100
    assert {member.home_region for member in world.members} >= {"us-east-1", "eu-west-1", "ap-southeast-2"}


def test_workspace_label_names_the_email_domain():
    world = build_world(7, workspace_label="Acme Corp")
    assert world.domain == "acme-corp.example"
    assert all(member.email.endswith("@acme-corp.example") for member in world.members)
    assert [m.name for m in world.members] == [m.name for m in build_world(7).members]


def test_devices_cover_every_type_and_os_in_plausible_pairs(world):
    members = {member.name for member in world.members}
    per_member = defaultdict(list)
    for device in world.devices:
        assert device.member in members
        per_member[device.member].append(device.name)
        assert DeviceType(device.type) in PLAUSIBLE[DeviceOS(device.os)], device
    assert set(per_member) == members
    for member, device_names in per_member.items():
        assert 1 <= len(device_names) <= 3, member
        assert len(set(device_names)) == len(device_names), member
    assert {device.type for device in world.devices} == {t.value for t in DeviceType}
    assert {device.os for device in world.devices} == {o.value for o in DeviceOS}
    names = {(device.member, device.name) for device in world.devices}
    assert any(member == "Zoë Müller" and name.startswith("Zoë's ") for member, name in names)
    assert any(re.fullmatch(r"ws-lin-\d{3}", name) for _, name in names)
    assert any(re.fullmatch(r"srv-lin-\d{3}", name) for _, name in names)
    browsers = [device for device in world.devices if not device.managed]
    assert browsers
    assert all(re.fullmatch(r"Browser \(\w+\)", device.name) for device in browsers)
    assert all(device.type == DeviceType.UNKNOWN for device in browsers)
    fleet = Counter(name for _, name in names if re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", name))
    assert fleet and max(fleet.values()) == 1  # fleet names are unique in the workspace


def test_networks_gateways_and_applications(world):
    gateways = {gateway.name: gateway for gateway in world.gateways}
    assert 10 <= len(world.gateways) <= 14
    assert len(gateways) == len(world.gateways)
    assert set(world.networks) >= {"Corporate", "Production VPC", "Engineering Lab", "Branch Offices"}
    for network in world.networks:
        in_network = [g for g in world.gateways if g.network == network]
        assert len(in_network) >= 2 and len({g.region for g in in_network}) >= 2, network
    assert {g.region for g in world.gateways} >= {
        "us-east-1",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-2",
        "sa-east-1",
    }
    assert "gw-us-east-1a" in gateways
    for gateway in world.gateways:
        assert str(ipaddress.ip_address(gateway.public_address)) == gateway.public_address
    apps = {app.name: app for app in world.applications}
    assert 8 <= len(apps) == len(world.applications) <= 14
    assert apps["Jira"].protocol == "HTTPS"
    assert apps["GitLab"].protocol == "SSH"
    assert apps["Finance RDP"].protocol == "RDP"
    assert {"Grafana", "Salesforce", "Prod DB Bastion"} <= set(apps)
    assert all(app.gateway in gateways for app in world.applications)
    assert world.gateway("gw-us-east-1a") is gateways["gw-us-east-1a"]


def test_world_is_a_function_of_the_seed(world):
    assert build_world(7) == world
    assert Simulator(seed=7).world == world
    other = build_world(8)
    assert [m.name for m in other.members] != [m.name for m in world.members]
    assert other.members[:3] == world.members[:3]  # the accented names are always there


# --------------------------------------------------------------------- snapshots


def test_one_snapshot_per_gateway_including_empty_ones():
    simulator = Simulator(seed=7, target_active=3)
    snapshots = simulator.step(T0)
    world = simulator.world
    assert [s.gateway for s in snapshots] == [g.name for g in world.gateways]
    assert sum(len(s.clients) for s in snapshots) == 3
    assert sum(not s.clients for s in snapshots) >= len(world.gateways) - 3
    for snapshot, gateway in zip(snapshots, world.gateways, strict=True):
        assert snapshot.taken_at == T0
        assert snapshot.source == "simulator"
        assert (snapshot.network, snapshot.region) == (gateway.network, gateway.region)
        assert snapshot.boot_id == simulator.boot_id is not None
        assert snapshot.row_errors == () and snapshot.pending == 0


def test_no_target_no_sessions():
    simulator = Simulator(target_active=0)
    for now, snapshots in run_simulator(simulator, regular_nows(20)):
        assert len(snapshots) == len(simulator.world.gateways)
        assert all(s.clients == () and s.taken_at == now for s in snapshots)


@pytest.mark.parametrize("target", [100, 450])
def test_first_step_creates_about_the_target(target):
    simulator = Simulator(seed=7, target_active=target)
    count = len(clients(simulator.step(T0)))
    assert abs(count - target) <= target * 0.05
    assert simulator.active_count == count


def test_first_step_started_times_have_a_long_tail(run):
    now, snapshots = run[0]
    ages = [(now - client.started_at).total_seconds() / 3600 for _, client in clients(snapshots)]
    assert min(ages) >= 0
    assert statistics.median(ages) < 3
    assert 1 <= statistics.mean(ages) <= 4
    assert sum(age < 10 / 60 for age in ages) >= 20  # many short
    assert sum(age > 8 for age in ages) >= 5  # spread beyond the working day
    assert sum(age > 24 for age in ages) >= 1  # some multi-day
    assert max(ages) < 15 * 24


def test_same_seed_and_times_give_the_same_snapshots():
    nows = [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3.5), T0 + timedelta(minutes=20)]
    nows += [nows[-1] + i * STEP for i in range(1, 30)]
    first = run_simulator(Simulator(seed=11), nows)
    second = run_simulator(Simulator(seed=11), nows)
    assert first == second
    other_seed = run_simulator(Simulator(seed=12), nows)
    assert other_seed != first
    shifted = run_simulator(Simulator(seed=11), [now + timedelta(seconds=1) for now in nows])
    assert [s.clients for _, snaps in shifted for s in snaps] != [
        s.clients for _, snaps in first for s in snaps
    ]


DIGEST_SCRIPT = """
from datetime import UTC, datetime, timedelta
import hashlib
from active_sessions.sources.simulator import Simulator
simulator = Simulator(seed=5, target_active=200)
t0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
print(hashlib.sha256(repr([simulator.step(t0 + timedelta(seconds=2 * i)) for i in range(40)]).encode()).hexdigest())
"""


def test_same_snapshots_in_any_process():
    """String hashing differs between processes: nothing may depend on set order."""
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(result.stdout.strip())
    simulator = Simulator(seed=5, target_active=200)
    here = [simulator.step(T0.replace(microsecond=0) + timedelta(seconds=2 * i)) for i in range(40)]
    assert digests == {hashlib.sha256(repr(here).encode()).hexdigest()}


def test_step_reads_no_clock(monkeypatch):
    class NoClock(datetime):
        @classmethod
        def now(cls, tz=None):
            raise AssertionError("the simulator read the clock")

        @classmethod
        def utcnow(cls):
            raise AssertionError("the simulator read the clock")

    monkeypatch.setattr(simulator_module, "datetime", NoClock)
    simulator = Simulator(seed=7)
    for now in regular_nows(5):
        simulator.step(now)
    assert simulator.active_count > 0


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        Simulator().step(datetime(2026, 12, 3, 9, 0))


def test_time_standing_still_or_going_back_changes_nothing():
    simulator = Simulator(seed=7)
    first = simulator.step(T0)
    again = simulator.step(T0)
    earlier = simulator.step(T0 - timedelta(minutes=5))
    assert [s.clients for s in again] == [s.clients for s in first]
    assert [s.clients for s in earlier] == [s.clients for s in first]
    assert all(s.taken_at == T0 - timedelta(minutes=5) for s in earlier)
    later = simulator.step(T0 + timedelta(seconds=2))
    assert [s.clients for s in later] != [s.clients for s in first]


# ----------------------------------------------------------------------- the run


def test_count_wanders_around_the_target_and_sessions_come_and_go(run):
    counts = [len(clients(snapshots)) for _, snapshots in run]
    assert all(TARGET * 0.9 <= count <= TARGET * 1.1 for count in counts), (min(counts), max(counts))
    keys = [{client.client_key for _, client in clients(snapshots)} for _, snapshots in run]
    starts = [len(after - before) for before, after in pairwise(keys)]
    ends = [len(before - after) for before, after in pairwise(keys)]
    assert 0.5 <= statistics.mean(starts) <= 5
    assert 0.5 <= statistics.mean(ends) <= 5
    assert sum(1 for s, e in zip(starts, ends, strict=True) if s or e) >= STEPS * 0.6  # visibly moving


def test_every_device_type_os_and_connection_type_appears(run):
    seen = [client for _, snapshots in run for _, client in clients(snapshots)]
    assert {c.device_type for c in seen} == {t.value for t in DeviceType}
    assert {c.device_os for c in seen} == {o.value for o in DeviceOS}
    assert {c.connection_type for c in seen} == {t.value for t in ConnectionType}
    first = [client for _, client in clients(run[0][1])]
    agent_share = sum(c.connection_type == "agent" for c in first) / len(first)
    assert 0.6 <= agent_share <= 0.8


def test_observations_match_the_world(run, world):
    members = {member.name: member for member in world.members}
    devices = {(device.member, device.name): device for device in world.devices}
    apps = {app.name: app for app in world.applications}
    checked = set()
    for now, snapshots in run:
        for snapshot, client in clients(snapshots):
            assert client.started_at <= now
            if client.client_key in checked:  # the rest never changes (see below)
                continue
            checked.add(client.client_key)
            assert client.started_at.tzinfo is not None
            assert client.member_email == members[client.member].email
            device = devices[(client.member, client.device)]
            assert (client.device_type, client.device_os) == (device.type, device.os)
            assert client.bytes_in >= 0 and client.bytes_out >= 0
            assert client.flags == ()
            if client.connection_type == "app":
                app = apps[client.app]
                assert client.app_protocol == app.protocol
                assert snapshot.gateway == app.gateway
                assert client.origin_ip is None
                assert client.virtual_addresses == () and client.gateways == ()
            else:
                assert client.connection_type == "agent"
                assert client.app is None and client.app_protocol is None
                assert device.managed
                origin = ipaddress.ip_address(client.origin_ip)
                assert str(origin) == client.origin_ip
                assert any(origin in network for network in DOCUMENTATION_RANGES), client.origin_ip
                assert client.virtual_addresses
                for address in client.virtual_addresses:
                    parsed = ipaddress.ip_address(address)
                    assert str(parsed) == address
                    assert any(parsed in network for network in TUNNEL_RANGES), address


def test_origins_include_ipv6(run):
    origins = [client.origin_ip for _, client in clients(run[0][1]) if client.origin_ip]
    assert any(":" in origin for origin in origins)
    assert sum("." in origin for origin in origins) > len(origins) / 2


def test_client_keys_are_unique_across_gateways(run):
    for _, snapshots in run:
        keys = [client.client_key for _, client in clients(snapshots)]
        assert len(set(keys)) == len(keys)
        assert all(re.fullmatch(r"sim=\d+", key) for key in keys)


def test_a_session_keeps_its_identity_until_it_ends_and_never_returns(run):
    identity: dict[str, tuple] = {}
    last_bytes: dict[str, tuple[int, int]] = {}
    gone: set[str] = set()
    previous: set[str] = set()
    for now, snapshots in run:
        current = set()
        for snapshot, client in clients(snapshots):
            key = client.client_key
            assert key not in gone, f"{key} came back"
            current.add(key)
            this = (
                snapshot.gateway,
                client.started_at,
                client.member,
                client.device,
                client.connection_type,
                client.app,
                client.origin_ip,
                client.virtual_addresses,
            )
            assert identity.setdefault(key, this) == this, key
            if key not in previous and previous:
                assert client.started_at > now - 2 * STEP  # a new session has just started
            bytes_in, bytes_out = last_bytes.get(key, (0, 0))
            assert client.bytes_in >= bytes_in and client.bytes_out >= bytes_out
            last_bytes[key] = (client.bytes_in, client.bytes_out)
        gone |= previous - current
        previous = current
    assert gone  # sessions did end
    growing = [key for key in previous if last_bytes[key] > (0, 0)]
    assert growing


def test_a_member_can_have_several_sessions_at_once(run):
    per_member = defaultdict(list)
    for _, client in clients(run[0][1]):
        per_member[client.member].append(client)
    assert max(len(sessions) for sessions in per_member.values()) >= 2
    assert any({c.connection_type for c in sessions} == {"agent", "app"} for sessions in per_member.values())
    assert any(
        len({c.device for c in sessions if c.connection_type == "agent"}) >= 2
        for sessions in per_member.values()
    )
    for sessions in per_member.values():  # one agent session per device at a time
        agent_devices = [c.device for c in sessions if c.connection_type == "agent"]
        assert len(set(agent_devices)) == len(agent_devices)


def test_gateway_accesses_only_grow(run, world):
    gateways = {gateway.name: gateway for gateway in world.gateways}
    accesses: dict[str, tuple] = {}
    added_during_run = 0
    for now, snapshots in run:
        for snapshot, client in clients(snapshots):
            if client.client_key in accesses:
                before = accesses[client.client_key]
                assert client.gateways[: len(before)] == before
                for access in client.gateways[len(before) :]:
                    assert access.first_used_at == now
                    added_during_run += 1
            accesses[client.client_key] = client.gateways
            names = [access.gateway for access in client.gateways]
            assert len(set(names)) == len(names)
            assert snapshot.gateway not in names
            for access in client.gateways:
                assert client.started_at <= access.first_used_at <= now
                gateway = gateways[access.gateway]
                assert (access.network, access.region) == (gateway.network, gateway.region)
    assert added_during_run >= 2
    assert sum(bool(accesses_) for accesses_ in accesses.values()) >= 20


def test_a_long_gap_between_steps():
    simulator = Simulator(seed=7, target_active=TARGET)
    first = {client.client_key for _, client in clients(simulator.step(T0))}
    later = T0 + timedelta(hours=6)
    snapshots = simulator.step(later)
    after = clients(snapshots)
    assert abs(len(after) - TARGET) <= TARGET * 0.2
    survivors = {client.client_key for _, client in after} & first
    assert len(survivors) < len(first) / 2
    for _, client in after:
        if client.client_key not in first:
            assert T0 < client.started_at <= later
    assert any(
        client.started_at < later - timedelta(hours=1)
        for _, client in after
        if client.client_key not in first
    )
