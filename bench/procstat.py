"""What the kernel says a server process used: CPU seconds and resident memory, from /proc."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of every thread of these processes, in seconds (10 ms resolution)."""
    return sum(sum(user_and_kernel_seconds(pid)) for pid in pids)


def user_and_kernel_seconds(pid: int) -> tuple[float, float]:
    """utime and stime of one process (all its threads): its own code, and the kernel's
    work on its behalf (system calls, and on loopback the receiver's TCP work too)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces: count fields after its ")".
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS  # fields 14 and 15 of proc(5)


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS


def rss_kib(pid: int) -> int:
    """VmRSS of one process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def settle(pids: list[int], timeout: float = 15.0, busy: float = 0.05) -> float:
    """Wait until these processes use less than `busy` of a core over 0.25 s; return the wait."""
    started = time.monotonic()
    before = cpu_seconds(pids)
    while time.monotonic() - started < timeout:
        time.sleep(0.25)
        now = cpu_seconds(pids)
        if now - before < busy * 0.25:
            break
        before = now
    return time.monotonic() - started


class PeakRss:
    """A process's resident memory (KiB), sampled every 20 ms in a thread while in use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = [rss_kib(pid)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.samples.append(rss_kib(self.pid))
            except (OSError, RuntimeError):
                return  # the process is gone

    @property
    def peak(self) -> int:
        return max(self.samples)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
