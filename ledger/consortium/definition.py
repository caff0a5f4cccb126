"""The consortium definition: which organisations take part, in which role, who runs a node.

A definition is a TOML file read with the standard library's `tomllib`:

    name = "示范区教育联盟"           # optional
    governors = ["bureau", "school-a", "school-b"]
    threshold = 2

    [[organisations]]
    id = "bureau"
    name = "示范区教育局"             # one line of visible text: no control characters
    name_en = "District Education Bureau"  # optional, the English name pages show beside it
    role = "bureau"                  # bureau | school | partner | auditor
    runs_validator = true
    host = "127.0.0.1"               # optional, the IP address (v4 or v6) other nodes reach it on
    rpc_port = 8545                  # optional
    p2p_port = 30303                 # optional

Every problem is a `ConfigError` whose one-line message starts with the file name, so an
operator can fix the file without reading a traceback.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.contracts.bindings import MAX_NAME_BYTES  # String[128]: about 42 Chinese characters
from ledger.errors import ConfigError

ROLES: tuple[str, ...] = ("bureau", "school", "partner", "auditor")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
DEFAULT_HOST = "127.0.0.1"

_TOP_KEYS = ("name", "governors", "threshold", "organisations")
_ORG_KEYS = ("id", "name", "name_en", "role", "runs_validator", "host", "rpc_port", "p2p_port")
# Characters a name must not hold (Unicode general categories): control characters, a newline
# among them (Cc); invisible format characters such as bidirectional overrides, which make text
# read differently from how it is stored (Cf); surrogates (Cs); the line and paragraph
# separators U+2028 and U+2029 (Zl, Zp). A name is shown on pages, in terminals and in the
# comments of generated files, and each of these could break a line there or hide what the
# name says. Private-use characters stay allowed: some rare Chinese characters live there.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    role: str
    runs_validator: bool
    rpc_port: int | None = None
    p2p_port: int | None = None
    host: str = DEFAULT_HOST
    name_en: str = ""


@dataclass(frozen=True)
class ConsortiumDefinition:
    organisations: tuple[Organisation, ...]
    governors: tuple[str, ...]
    threshold: int
    name: str = ""
    # Where the definition came from, so later errors (e.g. in the generator) can name it.
    source: str = "<consortium>"

    def organisation(self, org_id: str) -> Organisation:
        for org in self.organisations:
            if org.id == org_id:
                return org
        raise KeyError(org_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(org.id for org in self.organisations)

    @property
    def validators(self) -> tuple[Organisation, ...]:
        """Organisations that run a validator node, in file order."""
        return tuple(org for org in self.organisations if org.runs_validator)


def load_definition(path: str | Path) -> ConsortiumDefinition:
    """Read and validate a consortium definition file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: consortium definition file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc.strerror}") from None
    return parse_definition(text, source=source)


def parse_definition(text: str, source: str = "<consortium>") -> ConsortiumDefinition:
    """Parse and validate the TOML text of a consortium definition."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {_one_line(str(exc))}") from None
    return _Parser(source).definition(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {_one_line(problem)}")

    def definition(self, data: dict[str, Any]) -> ConsortiumDefinition:
        self.no_unknown_keys(data, _TOP_KEYS, "the top level")
        name = data.get("name", "")
        if not isinstance(name, str):
            raise self.fail(f"'name' must be {_kind(str)}, not {_kind_of(name)}")
        bad = first_unsafe_char(name)
        if bad is not None:
            raise self.fail(f"the consortium 'name' holds {describe_char(bad)}; a name is one "
                            "line of visible text")

        raw_orgs = data.get("organisations")
        if raw_orgs is None:
            raise self.fail("no organisations (add one [[organisations]] table for each)")
        if not isinstance(raw_orgs, list) or not all(isinstance(o, dict) for o in raw_orgs):
            raise self.fail("'organisations' must be an array of tables ([[organisations]])")
        if not raw_orgs:
            raise self.fail("no organisations (add one [[organisations]] table for each)")
        orgs = tuple(self.organisation(i, raw) for i, raw in enumerate(raw_orgs, start=1))

        seen: set[str] = set()
        for org in orgs:
            if org.id in seen:
                raise self.fail(f"organisation id '{org.id}' is used more than once")
            seen.add(org.id)
        if not any(org.role == "bureau" for org in orgs):
            raise self.fail("no organisation has role 'bureau' (at least one is required)")
        self.no_port_clash(orgs)

        governors = self.governors(data, seen)
        threshold = data.get("threshold")
        if threshold is None:
            raise self.fail("missing 'threshold' (how many governors must approve a change)")
        if not _is_int(threshold):
            raise self.fail(f"'threshold' must be {_kind(int)}, not {_kind_of(threshold)}")
        if not 1 <= threshold <= len(governors):
            raise self.fail(
                f"threshold {threshold} is out of range (expected 1 to {len(governors)}, "
                "the number of governors)"
            )
        return ConsortiumDefinition(
            organisations=orgs,
            governors=governors,
            threshold=threshold,
            name=name,
            source=self.source,
        )

    def organisation(self, index: int, raw: dict[str, Any]) -> Organisation:
        org_id = raw.get("id")
        if org_id is None:
            raise self.fail(f"organisation #{index} has no 'id'")
        if not isinstance(org_id, str) or not SLUG_RE.fullmatch(org_id):
            raise self.fail(
                f"organisation #{index} has invalid id {org_id!r} (expected 2 to 40 "
                "lowercase letters, digits or '-', not starting with '-')"
            )
        where = f"organisation '{org_id}'"
        self.no_unknown_keys(raw, _ORG_KEYS, where)

        name = self.required(raw, "name", str, where)
        if not name.strip():
            raise self.fail(f"{where} has an empty 'name'")
        bad = first_unsafe_char(name)
        if bad is not None:
            raise self.fail(f"{where} has a 'name' holding {describe_char(bad)}; a name is one "
                            "line of visible text")
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise self.fail(f"{where} has a 'name' longer than {MAX_NAME_BYTES} bytes in UTF-8 "
                            "(the chain stores at most that)")
        name_en = raw.get("name_en", "")
        if not isinstance(name_en, str):
            raise self.fail(f"{where} field 'name_en' must be {_kind(str)}, not {_kind_of(name_en)}")
        bad = first_unsafe_char(name_en)
        if bad is not None or len(name_en) > 200:
            raise self.fail(f"{where} has a 'name_en' that is not one line of visible text of at most "
                            "200 characters")
        role = self.required(raw, "role", str, where)
        if role not in ROLES:
            raise self.fail(
                f"{where} has unknown role '{role}' (expected one of {', '.join(ROLES)})"
            )
        runs_validator = self.required(raw, "runs_validator", bool, where)

        host = raw.get("host", DEFAULT_HOST)
        if not isinstance(host, str):
            raise self.fail(f"{where} field 'host' must be {_kind(str)}, not {_kind_of(host)}")
        try:
            host = node_host(host)
        except ValueError as exc:
            raise self.fail(f"{where} has host {host!r}, {exc}") from None

        return Organisation(
            id=org_id,
            name=name,
            name_en=name_en.strip(),
            role=role,
            runs_validator=runs_validator,
            rpc_port=self.port(raw, "rpc_port", where),
            p2p_port=self.port(raw, "p2p_port", where),
            host=host,
        )

    def governors(self, data: dict[str, Any], ids: set[str]) -> tuple[str, ...]:
        raw = data.get("governors")
        if raw is None:
            raise self.fail("missing 'governors' (the ids of the governing organisations)")
        if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
            raise self.fail("'governors' must be an array of organisation ids")
        if not raw:
            raise self.fail("'governors' is empty (at least one governor is required)")
        for gov in raw:
            if gov not in ids:
                raise self.fail(f"governor '{gov}' is not one of the organisations")
        if len(set(raw)) != len(raw):
            dup = next(g for g in raw if raw.count(g) > 1)
            raise self.fail(f"governor '{dup}' is listed more than once")
        return tuple(raw)

    def required(self, raw: dict[str, Any], key: str, kind: type, where: str) -> Any:
        if key not in raw:
            raise self.fail(f"{where} has no '{key}'")
        value = raw[key]
        ok = _is_int(value) if kind is int else isinstance(value, kind)
        if not ok:
            raise self.fail(f"{where} field '{key}' must be {_kind(kind)}, not {_kind_of(value)}")
        return value

    def port(self, raw: dict[str, Any], key: str, where: str) -> int | None:
        if key not in raw:
            return None
        value = self.required(raw, key, int, where)
        if not 1 <= value <= 65535:
            raise self.fail(f"{where} has {key} {value} out of range (1 to 65535)")
        return int(value)

    def no_port_clash(self, orgs: tuple[Organisation, ...]) -> None:
        used: dict[tuple[str, int], str] = {}
        for org in orgs:
            for port in (org.rpc_port, org.p2p_port):
                if port is None:
                    continue
                other = used.get((org.host, port))
                if other is not None:
                    raise self.fail(
                        f"organisations '{other}' and '{org.id}' both use port {port} "
                        f"on {org.host}"
                    )
                used[(org.host, port)] = org.id

    def no_unknown_keys(self, raw: dict[str, Any], known: tuple[str, ...], where: str) -> None:
        for key in raw:
            if key not in known:
                raise self.fail(
                    f"unknown key '{key}' in {where} (expected one of {', '.join(known)})"
                )


def node_host(host: str) -> str:
    """The address other nodes reach a node on, in its canonical form; ValueError if unusable.

    Besu's enode URLs and node allowlist take IP addresses, not host names. IPv6 is accepted
    (the enode writes it in brackets); an IPv6 address is given back compressed and lowercase,
    so that two spellings of one address are one address. An IPv4 address is given back as
    written (Python accepts only its canonical dotted form). The reason in a ValueError
    continues the sentence "organisation 'x' has host '...', ".
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("which is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise ValueError("an IPv6 address with a zone (%...), which only means something on "
                             "its own machine; give an address the other nodes can reach") from None
        if address.ipv4_mapped is not None:
            raise ValueError(f"an IPv4-mapped IPv6 address; write the IPv4 address "
                             f"{address.ipv4_mapped} instead") from None
    return str(address)


def first_unsafe_char(text: str) -> str | None:
    """The first character of `text` a name must not hold (see UNSAFE_CATEGORIES), or None."""
    return next((ch for ch in text if unicodedata.category(ch) in UNSAFE_CATEGORIES), None)


def describe_char(ch: str) -> str:
    """'a line break (U+000A)': a character named so that a one-line message can show it."""
    kind = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab",
            "\u2028": "a line separator", "\u2029": "a paragraph separator"}.get(ch)
    if kind is None:
        category = unicodedata.category(ch)
        kind = {"Cc": "a control character", "Cf": "an invisible format character",
                "Cs": "a surrogate"}.get(category, "an unsafe character")
    return f"{kind} (U+{ord(ch):04X})"


def _is_int(value: object) -> bool:
    # TOML booleans are Python bools, which are ints: `threshold = true` must not pass.
    return isinstance(value, int) and not isinstance(value, bool)


_KIND_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def _kind(kind: type) -> str:
    return _KIND_NAMES.get(kind, kind.__name__)


def _kind_of(value: object) -> str:
    for kind in (bool, int, float, str, list, dict):  # bool before int, see _is_int
        if isinstance(value, kind):
            return _kind(kind)
    return f"a {type(value).__name__}"  # dates and times, which tomllib also yields


def _one_line(text: str) -> str:
    return " ".join(text.split())
