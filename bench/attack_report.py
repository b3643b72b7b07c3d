"""The attacks scenario's result, for people: a markdown table with a row per attack, and
the goals against hostile clients, each met or not by what was measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# How late the gateway's event loop may run at worst in any attack: well under the
# interval at which it renews its heartbeat (SWITCHBOARD_GATEWAY_TTL_MS / 3: 2.3 s at the
# default TTL of 7 s), so a beat so delayed still lands long before the key's TTL runs out
# and no relay can declare the gateway dead; and a third of the bystanders' 1.5 s.
LOOP_LAG_BOUND_S = 0.5


@dataclass(frozen=True)
class Goal:
    name: str
    met: bool | None  # None: not measured
    measured: str


def goals(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The goals against hostile clients, met or not, with what was measured."""
    ran = [r for r in results if "failed" not in r]
    failed = [r["attack"] for r in results if "failed" in r]
    out: list[Goal] = []
    disconnected = [f"{r['attack']} ({', '.join(r['bystanders']['disconnects'])})"
                    for r in ran if r["bystanders"]["disconnects"]]
    out.append(Goal("no bystander disconnected", not disconnected and not failed and
                    bool(ran), "; ".join(disconnected) or "none"))
    worst = max(((r["bystanders"]["worst_ms"] or 0, r["attack"]) for r in ran), default=None)
    lost_trips = sum(r["bystanders"]["failed"] for r in ran)
    out.append(Goal("worst bystander round trip < 1.5 s",
                    None if worst is None else worst[0] < 1500 and not lost_trips,
                    "-" if worst is None else f"{worst[0]:,.0f} ms ({worst[1]})"
                    + (f", {lost_trips} round trips never came back" if lost_trips else "")))
    for label, kind, limit in (("four ping-flooding sockets, reading or not", "ping_flood", 64),
                               ("thirty one-byte-fragment sockets", "one_byte_fragments", 32)):
        growth = [(r["rss_growth_mb"], r["attack"]) for r in ran if r["kind"] == kind]
        out.append(Goal(f"{label} cost the gateway < {limit} MB RSS",
                        None if not growth else max(growth)[0] < limit,
                        ", ".join(f"+{mb:,.1f} MB ({name})" for mb, name in growth) or "-"))
    out.append(_loop_lag_goal(ran))
    traced = [f"{r['attack']} ({', '.join(r['logs']['traceback_in'])})" for r in ran
              if r["logs"]["tracebacks"]]
    out.append(Goal("no traceback in any log", None if not ran else not traced,
                    "; ".join(traced) or "none"))
    return [{"goal": g.name, "met": g.met, "measured": g.measured} for g in out]


def _loop_lag_goal(ran: list[dict[str, Any]]) -> Goal:
    """The worst bucket of the gateway's event-loop lag in each attack (bench.
    attack_scenario.worst_loop_lag) at most LOOP_LAG_BOUND_S: not met if one is past it,
    not measured while an attack has no reading."""
    lags = [(r.get("loop_lag_worst_s"), r["attack"]) for r in ran]
    measured = [(lag, name) for lag, name in lags if lag is not None]
    unread = [name for lag, name in lags if lag is None]
    over = [f"{_lag_s(lag)} ({name})" for lag, name in measured if lag > LOOP_LAG_BOUND_S]
    worst = max(measured, default=None)
    text = "; ".join(over) or ("-" if worst is None else f"{_lag_s(worst[0])} ({worst[1]})")
    if unread:
        text += f"; no reading: {', '.join(unread)}"
    return Goal(f"the gateway's worst event-loop lag <= {LOOP_LAG_BOUND_S:g} s in every attack",
                False if over else None if unread or not ran else True, text)


def goals_text(result: dict[str, Any]) -> str:
    lines = ["Goals against hostile clients:"]
    for goal in result["goals"]:
        verdict = {True: "met", False: "not met", None: "not measured"}[goal["met"]]
        lines.append(f"  {goal['goal']}: {goal['measured']}: {verdict}")
    return "\n".join(lines)


def _codes(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "-"
    return ", ".join(f"{code} x{count}" for code, count in
                     sorted(counts.items(), key=lambda item: -item[1])) or "none"


def _notes(result: dict[str, Any]) -> str:
    outcome = result["outcome"]
    notes = []
    if result["kind"] == "ghosts":
        notes.append(f"peer_left {outcome['peer_left']}/{len(outcome['ghost_ids'])}, "
                     f"newcomer: {outcome['newcomer']}")
    if outcome.get("frames_per_s"):
        # What TCP took from the attackers: once the gateway stops reading, little.
        notes.append(f"TCP took {outcome['bytes_sent'] / 1e6:,.1f} MB in "
                     f"{outcome['flood_s']:g} s ({outcome['frames_per_s']:,} frames/s)")
    if outcome.get("reasons"):
        notes.append("reasons: " + ", ".join(f'"{r}"' for r in outcome["reasons"]))
    if outcome.get("last_close_s") is not None:
        notes.append(f"closed after {outcome['first_close_s']:g}-{outcome['last_close_s']:g} s")
    if result["logs"]["heartbeat_lapsed"]:
        notes.append("heartbeat lapsed")
    if not result["gateway_alive"]:
        notes.append("GATEWAY DIED")
    return "; ".join(notes)


def table(result: dict[str, Any]) -> str:
    """One markdown row per attack."""
    lines = ["| attack | bystander round trips ok / failed | bystander disconnects | "
             "worst / p99 ms | gateway RSS MB before / peak / after | gateway CPU s | "
             "gateway loop lag, worst s | "
             "attack sockets ended (client saw) | closes the gateway counted | "
             "tracebacks / ERROR lines | notes |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["attacks"]:
        if "failed" in r:
            lines.append(f"| {r['attack']} | FAILED: "
                         f"{r['failed'].strip().splitlines()[-1][:120]} ||||||||||")
            continue
        trips, rss, logs = r["bystanders"], r["rss_mb"], r["logs"]
        outcome = r["outcome"]
        codes = "attacker failed" if "failed" in outcome else _codes(outcome.get("codes"))
        lines.append(
            f"| {r['attack']} | {trips['ok']} / {trips['failed']} | "
            f"{', '.join(trips['disconnects']) or 'none'} | "
            f"{_num(trips['worst_ms'])} / {_num(trips['p99_ms'])} | "
            f"{_num(rss['before'], 1)} / {_num(rss['peak'], 1)} / {_num(rss['after'], 1)} | "
            f"{_num(r['gateway_cpu_s'], 2)} | {_lag(r.get('loop_lag_worst_s'))} | "
            f"{codes} | {_codes(r['server_closes'])} | "
            f"{logs['tracebacks']} / {logs['error_lines']} | "
            f"{_notes(r) if 'failed' not in outcome else ''} |")
    return "\n".join(lines)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def brief(result: dict[str, Any]) -> str:
    """One attack in a line, as the run goes."""
    if "failed" in result:
        return f"FAILED: {result['failed'].splitlines()[-1] if result['failed'] else ''}"
    trips = result["bystanders"]
    return (f"bystanders {trips['ok']} ok/{trips['failed']} failed, "
            f"worst {trips['worst_ms']} ms, disconnects {trips['disconnects'] or 'none'}; "
            f"attack sockets {result['outcome'].get('codes')}")


def _lag(seconds: float | None) -> str:
    """A histogram bucket's bound as the worst lag: at most it, or past the last bound."""
    if seconds is None:
        return "-"
    return "past the last bucket" if seconds == float("inf") else f"<= {seconds:g}"


def _lag_s(seconds: float) -> str:
    return _lag(seconds) + ("" if seconds == float("inf") else " s")
