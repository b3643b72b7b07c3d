"""`python -m bench.topologies`: Switchboard split over processes, on a single Redis and on
a Redis Cluster: closed-loop throughput and CPU per message at a fixed rate, for each
count of gateways and relays (the figures of docs/scaling.md, and the
"processes" scenario).

On this 2-core machine the figures show what splitting costs (more processes, more
wake-ups and round trips for the same work), not what it gains: that needs more cores.
Every configuration runs in the same sitting, so compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.servers import raise_open_files_limit, start_switchboard

RESULTS = Path(__file__).resolve().parent / "results"
LAYOUTS = ((1, 1), (2, 1), (1, 2), (2, 2), (4, 2))  # (gateways, relays)


def measure(gateways: int, relays: int, masters: int,
            settings: scenarios.Settings) -> dict[str, Any]:
    """One layout: throughput, then CPU per message at the fixed rate."""
    server = start_switchboard(gateways, relays, redis_masters=masters)
    try:
        closed = scenarios.throughput(server, settings)
        paced = scenarios.paced(server, settings, settings.cpu_pairs,
                                settings.cpu_rate * settings.cpu_pairs, settings.cpu_seconds)
    finally:
        server.stop()
    return {
        "redis": f"cluster of {masters}" if masters else "single",
        "gateways": gateways, "relays": relays,
        "msgs_per_s": closed["msgs_per_s"], "lost": closed["lost"] + paced["lost"],
        "cpu_per_1k": paced["server_cpu_per_1k"], "p99_ms": paced["p99_ms"],
        "cpu_by_role_s": _by_role(paced["server_cpu_by_process_s"]),
    }


def _by_role(cpu: dict[str, float]) -> dict[str, float]:
    """gateway-2 and the like summed into their role."""
    roles: dict[str, float] = {}
    for name, seconds in cpu.items():
        role = name.split("-")[0]
        roles[role] = round(roles.get(role, 0.0) + seconds, 3)
    return roles


def table(rows: list[dict[str, Any]]) -> str:
    base = {row["redis"]: row for row in rows if (row["gateways"], row["relays"]) == (1, 1)}
    first = rows[0]
    lines = ["| redis | gateways x relays | msg/s (vs 1x1 single) | CPU s per 1,000 msgs "
             "(vs 1x1 single) | p99 ms | CPU s by role | lost |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['redis']} | {row['gateways']} x {row['relays']} | {row['msgs_per_s']:,} "
            f"({row['msgs_per_s'] / first['msgs_per_s']:.2f}x) | {row['cpu_per_1k']:.4f} "
            f"({row['cpu_per_1k'] / first['cpu_per_1k']:.2f}x) | {row['p99_ms']} | "
            f"{row['cpu_by_role_s']} | {row['lost']} |")
    if len(base) == 2:
        single, cluster = base["single"], next(v for k, v in base.items() if k != "single")
        lines.append(f"\ncluster / single at 1 x 1: throughput "
                     f"{cluster['msgs_per_s'] / single['msgs_per_s']:.2f}x, CPU per message "
                     f"{cluster['cpu_per_1k'] / single['cpu_per_1k']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masters", type=int, default=3,
                        help="masters of the Redis Cluster runs (0: single Redis only)")
    parser.add_argument("--layouts", default=",".join(f"{g}x{r}" for g, r in LAYOUTS),
                        help="gateways x relays, comma-separated (e.g. 1x1,2x2)")
    parser.add_argument("--seconds", type=float, default=5.0, help="closed loop, measured")
    parser.add_argument("--cpu-seconds", type=float, default=8.0, help="fixed rate, measured")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    settings = replace(scenarios.Settings(), seconds=args.seconds, cpu_seconds=args.cpu_seconds)
    layouts = [tuple(int(n) for n in layout.split("x")) for layout in args.layouts.split(",")]
    rows = []
    for masters in [0] + ([args.masters] if args.masters else []):
        for gateways, relays in layouts:
            started = time.monotonic()
            row = measure(gateways, relays, masters, settings)
            print(f"-- {row['redis']}, {gateways} x {relays}: {row['msgs_per_s']:,} msg/s, "
                  f"{row['cpu_per_1k']:.4f} s CPU per 1,000 msgs "
                  f"({time.monotonic() - started:.0f} s)",
                  flush=True)
            rows.append(row)
    print(table(rows))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"topologies-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"settings": vars(args) | {"results_dir": str(args.results_dir)},
                               "rows": rows}, indent=2))
    print(f"written to {out}")
    return 0 if all(row["lost"] == 0 for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
