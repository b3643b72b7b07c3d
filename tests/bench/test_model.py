"""The capacity model (bench/model.py): cases worked out by hand, in round figures."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from bench.model import ONES, SOURCES, Figures, PerProcess, Workload, main, plan

# Round figures: 10, 3 and 6 us per message, nothing per join or idle socket, 2 KiB per
# socket, 1 KiB per member in Redis.
ROUND = Figures(us_per_msg=PerProcess(gateway=10.0, relay=3.0, redis=6.0),
                us_per_join=PerProcess(gateway=0.0, relay=0.0, redis=0.0),
                resumable_overhead=ONES, gateway_idle_us_per_socket_s=0.0,
                gateway_kib_per_socket=2.0, relay_kib_per_member=0.0,
                redis_kib_per_member=1.0, redis_kib_per_kept_frame=0.5,
                redis_kib_per_kept_sdp=4.0, base_mib=0.0)


def pairs(rate_after_setup: float, **changes: object) -> Workload:
    """1M peers in rooms of 2 whose one link costs 2 messages per 1,000 s call (0.001
    msg/s each): `rate_after_setup` 0.999 makes 1 msg/s per peer, 1M msg/s in all.
    Usable memory: 256 MiB per gateway, 2,048 per Redis."""
    fields = {"peers": 1_000_000, "room_size": 2, "call_s": 1000.0,
              "candidates_per_link": 0, "rate_per_peer": rate_after_setup,
              "resumable_share": 0.0, "memory_budget": 0.5, **changes}
    return msgspec.convert(fields, Workload)


@pytest.mark.parametrize(("topology", "size", "msgs_per_peer_s"), [
    # links x (offer + answer + 16 candidates) / 2 ends / 600 s, + 0.05 after setup
    ("mesh", 2, 1 * 18 / 2 / 600 + 0.05),  # 0.065
    ("mesh", 5, 4 * 18 / 2 / 600 + 0.05),  # 0.110
    ("mesh", 10, 9 * 18 / 2 / 600 + 0.05),  # 0.185
    # the host's 999 links and each client's 1, over 1,000 members
    ("star", 1000, (999 + 999) / 1000 * 18 / 2 / 600 + 0.05),  # 0.07997
])
def test_messages_per_peer_count_each_links_setup(topology: str, size: int,
                                                  msgs_per_peer_s: float) -> None:
    workload = msgspec.convert({"topology": topology, "room_size": size}, Workload)
    result = plan(Figures(), workload)
    assert result.msgs_per_peer_s == pytest.approx(msgs_per_peer_s)
    assert result.msgs_per_s == pytest.approx(1_000_000 * msgs_per_peer_s)
    assert result.joins_per_s == pytest.approx(1_000_000 / 600)


@pytest.mark.parametrize(("rate", "gateways", "relays", "masters", "masters_needed",
                          "first_limit"), [
    # 0.1M msg/s: gateway CPU 1 core / 0.7 = 1.43, memory 1,953 MiB / 256 = 7.63
    (0.099, 8, 1, 1, 1, ("gateway", "memory")),
    # 1M msg/s: gateway 10 / 0.7 = 14.3; relay 3 / 0.7 = 4.3 (64 shards: 13 each on 5);
    # Redis 6 / 0.7 = 8.57: 9 would hold 8 shards of 0.134 (1.07), so 10 with 7 each
    (0.999, 15, 5, 10, 9, ("gateway", "cpu")),
    # 2M msg/s: gateway 28.6; relay 8.57 -> 10 as Redis above; Redis 17.1: 18 to 21 hold
    # 4 shards of 0.268 (1.07), 22 hold 3 (0.80)
    (1.999, 29, 10, 22, 18, ("gateway", "cpu")),
])
def test_counts_and_the_first_limit(rate: float, gateways: int, relays: int, masters: int,
                                    masters_needed: int, first_limit: tuple[str, str]) -> None:
    result = plan(ROUND, pairs(rate))
    assert (result.gateway.count, result.relay.count, result.redis.count) == (
        gateways, relays, masters)
    assert result.redis.needed == masters_needed
    assert result.redis_nodes == 2 * masters  # one replica each
    assert result.first_limit == first_limit


def test_doubling_the_rate_doubles_the_cpu_and_not_the_memory() -> None:
    one, two = plan(ROUND, pairs(0.999)), plan(ROUND, pairs(1.999))
    for kind in ("gateway", "relay", "redis"):
        assert getattr(two, kind).cores == pytest.approx(2 * getattr(one, kind).cores)
        assert getattr(two, kind).memory_mib == getattr(one, kind).memory_mib
    assert one.gateway.cores == pytest.approx(10.0)
    assert (one.gateway.bound_by, plan(ROUND, pairs(0.099)).gateway.bound_by) == (
        "cpu", "memory")


def test_joins_and_idle_sockets_cost_the_gateway_beside_its_messages() -> None:
    figures = msgspec.structs.replace(
        ROUND, us_per_join=PerProcess(gateway=100.0, relay=0.0, redis=0.0),
        gateway_idle_us_per_socket_s=1.0)
    # 1,000 joins/s and as many leaves at 100 us: 0.2 core; 1M idle sockets at 1 us/s: 1.
    assert plan(figures, pairs(0.999)).gateway.cores == pytest.approx(10 + 0.2 + 1)


@pytest.mark.parametrize(("overhead", "share", "relay_cores", "redis_cores"), [
    ({"cluster_overhead": PerProcess(gateway=1.0, relay=1.0, redis=1.5)}, 0.0, 3.0, 9.0),
    ({"split_overhead": PerProcess(gateway=1.0, relay=1.2, redis=1.0)}, 0.0, 3.6, 6.0),
    # half the peers resumable, which cost the relay 1.2x: 1.1x in all
    ({"resumable_overhead": PerProcess(gateway=1.0, relay=1.2, redis=1.0)}, 0.5, 3.3, 6.0),
])
def test_overheads_scale_their_process(overhead: dict[str, PerProcess], share: float,
                                       relay_cores: float, redis_cores: float) -> None:
    result = plan(msgspec.structs.replace(ROUND, **overhead),
                  pairs(0.999, resumable_share=share))
    assert (result.relay.cores, result.redis.cores) == (
        pytest.approx(relay_cores), pytest.approx(redis_cores))
    assert result.gateway.cores == pytest.approx(10.0)


def test_too_few_shards_leave_no_count() -> None:
    # Redis needs 8.57 masters' worth: 4 shards would be 2.1 each, 9 are 0.95 each.
    few, enough = plan(ROUND, pairs(0.999, shards=4)), plan(ROUND, pairs(0.999, shards=9))
    assert (few.redis.count, few.redis_nodes, few.min_shards) == (None, None, 9)
    assert (enough.redis.count, enough.relay.count) == (9, 5)
    assert few.single_redis_peers == 116_666  # 1M / 8.57


def test_kept_frames_of_resumable_peers_fill_redis() -> None:
    workload = Workload(topology="mesh", room_size=2, resumable_share=1.0,
                        memory_budget=0.5)
    result = plan(ROUND, workload)
    # A member of a pair receives 9 frames over its link (1 SDP, 8 candidates), 30 after
    # setup (0.05 x 600 s), joined_room and the other's new_peer or peer_left: 41 frames,
    # 4 + 40 x 0.5 = 24 KiB, besides its 1 KiB as a member.
    assert result.kept_frames_per_peer == pytest.approx(41)
    assert result.redis.memory_mib == pytest.approx(1_000_000 * 25 / 1024)
    assert result.redis.memory_need == pytest.approx(1_000_000 * 25 / 1024 / 2048)
    assert result.first_limit == ("redis", "memory")


def test_a_star_hosts_list_stops_at_the_bound() -> None:
    workload = Workload(topology="star", room_size=1000, resumable_share=1.0)
    # The host: 999 x 9 + 30 + 3 = 9,024 frames, 1,000 kept; each client 9 + 30 + 3 = 42.
    assert plan(ROUND, workload).kept_frames_per_peer == pytest.approx(
        (1000 + 999 * 42) / 1000)


def test_redis_commands_per_message() -> None:
    figures = msgspec.structs.replace(ROUND, messages_per_read=100.0, messages_per_commit=3.5)
    # XADD 1, XREADGROUP 1/100, the commit and its 6 commands 7/3.5, PUBLISH 1
    assert plan(figures, pairs(0.999)).redis_commands_per_msg == pytest.approx(4.01)
    # and a resumable peer's RPUSH, LTRIM, PEXPIRE and HSET
    assert plan(figures, pairs(0.999, resumable_share=1.0)).redis_commands_per_msg == (
        pytest.approx(8.01))


def test_every_figure_names_its_source() -> None:
    assert set(SOURCES) == {field.name for field in msgspec.structs.fields(Figures)}


def test_the_command_line_reads_figures_and_prints_every_room(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figures = tmp_path / "figures.json"
    figures.write_text(json.dumps({"cluster_overhead": {"gateway": 1, "relay": 1,
                                                        "redis": 1.25}}))
    assert main(["--figures", str(figures), "--rate-per-peer", "0.1", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert [(p["workload"]["topology"], p["workload"]["room_size"]) for p in plans] == [
        ("mesh", 2), ("mesh", 5), ("mesh", 10), ("star", 1000)]
    assert {p["workload"]["rate_per_peer"] for p in plans} == {0.1}
    assert main([]) == 0
    table = capsys.readouterr().out
    assert "first limit" in table and "star 1,000" in table
    figures.write_text(json.dumps({"cluster_overhead_typo": 2}))
    with pytest.raises(msgspec.ValidationError):
        main(["--figures", str(figures)])
