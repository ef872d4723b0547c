"""Helpers for the local-cloud integration tests (not a conftest: the name must not clash with others).

A test module starts the server it needs once; at the end it stops the server only if the module
started it, so a stack brought up by a developer keeps running.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from localcloud.process import read_pid


class Service(Protocol):
    SERVICE: str

    def start(self) -> None: ...

    def stop(self) -> bool: ...

    def is_healthy(self) -> bool: ...


@contextmanager
def service_running(service: Service) -> Iterator[bool]:
    """Start `service` for a test module; yields True when it was already running before."""
    already_running = read_pid(service.SERVICE) is not None and service.is_healthy()
    service.start()
    try:
        yield already_running
    finally:
        if already_running:
            service.start()  # a test may have stopped it: leave it as we found it
        else:
            service.stop()


def port_refuses(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


def child_pids(pid: int) -> set[int]:
    """PIDs whose parent is `pid` (read from /proc)."""
    children: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name is in parentheses and may contain spaces: split after the last ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.add(int(entry.name))
    return children
