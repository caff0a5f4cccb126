"""A served network for credential tests: demo consortium, embedded chain, real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from ledger.node import Node, init_network
from ledger.settings import Settings
from node_config import DEMO_CONSORTIUM
from tests.servers import serve_app


@dataclass
class Served:
    node: Node
    base: str
    api_keys: dict[str, str]
    http: httpx.Client
    app: Any = None

    def as_org(self, org: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_keys[org]}"}

    def issue(self, org: str, ctype: str, rows: list[dict[str, Any]], **headers: str) -> httpx.Response:
        return self.http.post("/v1/credentials", json={"type": ctype, "credentials": rows},
                              headers={**self.as_org(org), **headers})


@contextmanager
def served_network(data_dir: Path, database_url: str = "", *, background: bool = False) -> Iterator[Served]:
    """The demo network behind the API on a real port; ``background``: with the node's
    background pass (indexer, resumed work), as ``serve`` runs it."""
    node = init_network(Settings(data_dir=data_dir, database_url=database_url), DEMO_CONSORTIUM)
    try:
        keys = json.loads((data_dir / "api-keys.json").read_text())
        app = create_app(node, background=background)
        with serve_app(app) as base, \
                httpx.Client(base_url=base, timeout=120) as http:
            yield Served(node, base, keys, http, app)
    finally:
        node.close()


def transcript_row(n: int, courses: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "holder_name": f"学生{n:04d}", "student_id": f"S2026{n:05d}", "program": "计算机科学与技术",
        "courses": [{"term": "2025-2026-1", "code": f"CS{100 + i}", "name": f"课程{i}",
                     "credits": "3", "grade": str(70 + i)} for i in range(courses)],
        **extra,
    }


def json_places(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (the value itself included), as key/index paths."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += json_places(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += json_places(v, (*prefix, i))
    return out


def replaced_at(value: Any, place: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``place`` (see :func:`json_places`)."""
    if not place:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[place[0]] = replaced_at(value[place[0]], place[1:], new)
    return copy
