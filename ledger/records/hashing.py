"""The canonical form of a stored statement, its leaf, and the forms xAPI compares and returns.

- **Leaf**: ``keccak256(salt || JCS({"format": FORMAT, "statement": statement}))`` (RFC 8785
  canonical JSON, ledger.canonical) over the statement exactly as the LRS stores and returns
  it in the ``exact`` format, ``stored`` and ``authority`` included. The 32-byte salt is kept
  beside the row, so the leaf on chain says nothing of a low-entropy statement. Voiding is
  another statement with its own leaf: a statement's leaf never changes.
- **Sameness** (xAPI 2.0 "Statement Comparison Requirements"): two statements with one id
  are the same if they differ only in what the LRS sets or may normalise: ``authority``,
  ``stored``, ``version``, the time zone a ``timestamp`` is written in, the case of
  language tags, and whether a default ``objectType`` is written out.
- **Formats** (the ``format`` parameter of GET statements): ``exact`` as stored; ``ids``
  keeps only identifiers of agents, groups (members of anonymous groups too), activities and
  verbs; ``canonical`` keeps one language of each language map, the best for the request's
  Accept-Language.
"""

from __future__ import annotations

import copy
from datetime import UTC
from typing import Any

from ledger.canonical import canonical_json
from ledger.merkle import record_hash
from ledger.records.validation import parse_timestamp

__all__ = [
    "FORMAT",
    "accepted_languages",
    "agent_key",
    "canonical_statement",
    "formatted",
    "same_statement",
    "statement_leaf",
]

FORMAT = "eduledger-xapi-statement/1"
_LANGUAGE_MAPS = {"display", "name", "description"}


def canonical_statement(statement: dict[str, Any]) -> bytes:
    return canonical_json({"format": FORMAT, "statement": statement})


def statement_leaf(salt: bytes, statement: dict[str, Any]) -> bytes:
    return record_hash(salt, canonical_statement(statement))


def agent_key(agent: dict[str, Any]) -> str | None:
    """An Agent's or identified Group's inverse functional identifier, as one string
    (None for an anonymous Group)."""
    if "mbox" in agent:
        return "mbox:" + str(agent["mbox"]).lower()
    if "mbox_sha1sum" in agent:
        return "mbox_sha1sum:" + str(agent["mbox_sha1sum"]).lower()
    if "openid" in agent:
        return "openid:" + str(agent["openid"])
    if "account" in agent:
        return "account:" + str(agent["account"]["homePage"]) + "|" + str(agent["account"]["name"])
    return None


def _normalised(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if key in _LANGUAGE_MAPS and all(isinstance(v, str) for v in value.values()):
            return {k.lower(): v for k, v in value.items()}
        out = {k: _normalised(v, k) for k, v in value.items()}
        if key in ("actor", "instructor", "agent", "authority") or key.startswith("member"):
            if out.get("objectType") == "Agent":
                del out["objectType"]
        if (
            key in ("object", "parent", "grouping", "category", "other")
            and out.get("objectType") == "Activity"
        ):
            del out["objectType"]
        return out
    if isinstance(value, list):
        return [_normalised(v, key) for v in value]
    return value


def same_statement(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """Whether `incoming` is the statement `stored` (see the module docstring); a timestamp
    the incoming one lacks is the one the LRS set, and not compared."""
    ignored = {"authority", "stored", "version"} | (set() if "timestamp" in incoming else {"timestamp"})

    def comparable(statement: dict[str, Any]) -> Any:
        kept = {k: v for k, v in statement.items() if k not in ignored}
        if "timestamp" in kept:
            kept["timestamp"] = parse_timestamp(kept["timestamp"], "timestamp").astimezone(UTC).isoformat()
        return _normalised(kept)

    return bool(comparable(stored) == comparable(incoming))


def _ids_only(value: Any, key: str = "") -> Any:
    if isinstance(value, list):
        return [_ids_only(v, key) for v in value]
    if not isinstance(value, dict):
        return value
    object_type = value.get("objectType")
    if key in ("actor", "instructor", "team", "agent", "group", "authority") or object_type in (
        "Agent",
        "Group",
    ):
        kept = {
            k: v for k, v in value.items() if k in ("objectType", "mbox", "mbox_sha1sum", "openid", "account")
        }
        if "member" in value and agent_key(value) is None:
            kept["member"] = [_ids_only(m, "agent") for m in value["member"]]
        return kept
    if key == "verb":
        return {"id": value["id"]}
    if key in ("object", "parent", "grouping", "category", "other") and object_type in (None, "Activity"):
        return {k: v for k, v in value.items() if k in ("objectType", "id")}
    return {k: _ids_only(v, k) for k, v in value.items()}


def _best_language(language_map: dict[str, str], accepted: list[str]) -> dict[str, str]:
    if not language_map:
        return language_map
    lowered = {k.lower(): k for k in language_map}
    for wanted in accepted:
        wanted = wanted.lower()
        if wanted in lowered:
            return {lowered[wanted]: language_map[lowered[wanted]]}
        for tag in lowered:  # "zh" accepts "zh-CN"
            if tag.split("-")[0] == wanted.split("-")[0]:
                return {lowered[tag]: language_map[lowered[tag]]}
    tag = lowered.get("und", next(iter(language_map)))
    return {tag: language_map[tag]}


def _canonical(value: Any, accepted: list[str], key: str = "") -> Any:
    if isinstance(value, list):
        return [_canonical(v, accepted, key) for v in value]
    if not isinstance(value, dict):
        return value
    if key in _LANGUAGE_MAPS and all(isinstance(v, str) for v in value.values()):
        return _best_language(value, accepted)
    if key == "extensions":
        return value
    return {k: _canonical(v, accepted, k) for k, v in value.items()}


def accepted_languages(header: str) -> list[str]:
    """An Accept-Language header's tags, best first (RFC 9110 q-values)."""
    ranked = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, i, tag))
    return [tag for _, _, tag in sorted(ranked)]


def formatted(statement: dict[str, Any], fmt: str, accept_language: str = "") -> dict[str, Any]:
    if fmt == "ids":
        result: dict[str, Any] = _ids_only(copy.deepcopy(statement))
        return result
    if fmt == "canonical":
        canonical: dict[str, Any] = _canonical(statement, accepted_languages(accept_language))
        return canonical
    return statement
