"""Statement validation to xAPI 2.0 (IEEE 9274.1.1), part 2 "Statements", and the learner rules.

``check_statement`` raises ``BadStatement`` naming the property (as a JSON path) and the
rule at the first fault; it never changes the statement. The rules, by object:

- every object admits only the properties the standard names (no extras), with the types
  it names; ``objectType`` values are case-sensitive;
- IRIs are absolute (a scheme, no whitespace or delimiters); language maps have RFC 5646
  tags as keys and strings as values; extensions have IRIs as keys;
- ids of statements, registrations and StatementRefs are UUIDs (8-4-4-4-12 hex);
- timestamps are ISO 8601 date-times with a zone offset (not ``-00:00``); durations are
  ISO 8601 durations;
- an Agent has exactly one IFI (mbox ``mailto:``, mbox_sha1sum, openid, account
  {homePage, name}); a Group is anonymous (members, no IFI) or identified (one IFI), and
  its members are Agents;
- a score has scaled in [-1, 1], min < max and min <= raw <= max;
- context ``revision`` and ``platform`` only with an Activity as object; a SubStatement
  holds no id, stored, version, authority nor another SubStatement;
- a voiding statement (verb ``.../voided``) has a StatementRef as object.

Learners (``check_learner``): the actor, and every member of a Group actor, is an opaque
account; no agent anywhere in the statement is named by a string that looks like a
resident identity number (18 characters, the last the ISO 7064 MOD 11-2 check character).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ledger.records.errors import BadStatement, LearnerNotOpaque, NationalIdLearner

__all__ = [
    "VOIDED",
    "check_agent",
    "check_iri",
    "check_learner",
    "check_uuid",
    "check_statement",
    "is_resident_id",
    "parse_timestamp",
    "agents_of",
]

VOIDED = "http://adlnet.gov/expapi/verbs/voided"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# RFC 3987 absolute IRI, checked for what matters: a scheme, and no character that an IRI
# may never hold (whitespace, controls, <>"{}|\^`).
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f]+\Z")
_IRL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s<>\"{}|\\^`\x00-\x1f\x7f]+\Z")
# RFC 5646 language tag (the well-formed production, simplified to its shape)
_LANG = re.compile(
    r"(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?"
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?\Z"
    r"|[Xx](?:-[A-Za-z0-9]{1,8})+\Z|und\Z"
)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})\Z")
_DURATION = re.compile(
    r"P(?=\d|T\d)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?"
    r"(?:\d+(?:\.\d+)?D)?(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?"
    r"(?:\d+(?:\.\d+)?S)?)?\Z"
)
_SHA1 = re.compile(r"[0-9a-fA-F]{40}\Z")
_SHA2 = re.compile(r"[0-9a-fA-F]{56,128}\Z")
_RESIDENT_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_STATEMENT = {
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "stored",
    "authority",
    "version",
    "attachments",
}
_SUBSTATEMENT = {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
_AGENT = {"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"}
_GROUP = _AGENT | {"member"}
_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_INTERACTION_TYPES = {
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
}
_COMPONENT_LISTS = {"choices", "scale", "source", "target", "steps"}
_CONTEXT_ACTIVITY_KEYS = {"parent", "grouping", "category", "other"}


def _fail(path: str, rule: str) -> BadStatement:
    return BadStatement(f"{path}: {rule}", path=path)


def _object(value: Any, path: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be a JSON object")
    extra = sorted(k for k in value if k not in allowed)
    if extra:
        raise _fail(f"{path}.{extra[0]}", "is not a property xAPI 2.0 allows here")
    for key in required:
        if key not in value:
            raise _fail(f"{path}.{key}", "is required")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "must be a string")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "must be true or false")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, "must be a number")
    return float(value)


def check_iri(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _IRI.match(value):
        raise _fail(path, "must be an absolute IRI")
    return value


def _irl(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _IRL.match(value):
        raise _fail(path, "must be an IRL (an absolute IRI with a host)")
    return value


def check_uuid(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _UUID.match(value):
        raise _fail(path, "must be a UUID")
    return value


def parse_timestamp(value: Any, path: str) -> datetime:
    if not isinstance(value, str) or not _TIMESTAMP.match(value) or value.endswith("-00:00"):
        raise _fail(path, "must be an ISO 8601 timestamp with a time zone offset (not -00:00)")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise _fail(path, "is not a valid date and time") from None


def _language_map(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _fail(path, "must be a language map (an object of language tags to strings)")
    for tag, text in value.items():
        if not _LANG.match(tag):
            raise _fail(f"{path}.{tag}", "is not an RFC 5646 language tag")
        _string(text, f"{path}.{tag}")


def _extensions(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object of IRIs to values")
    for key in value:
        check_iri(key, f"{path}.{key}")


def check_agent(value: Any, path: str, *, kind: str | None = None) -> None:
    """An Agent or Group; `kind` forces one ("Agent" for a Group's members)."""
    if not isinstance(value, dict):
        raise _fail(path, "must be an Agent or Group object")
    object_type = value.get("objectType", "Agent")
    if object_type not in ("Agent", "Group") or (kind is not None and object_type != kind):
        raise _fail(f"{path}.objectType", f"must be {kind or 'Agent or Group'}")
    _object(value, path, _GROUP if object_type == "Group" else _AGENT)
    if "name" in value:
        _string(value["name"], f"{path}.name")
    ifis = [k for k in _IFIS if k in value]
    if len(ifis) > 1:
        raise _fail(path, f"has more than one inverse functional identifier ({', '.join(ifis)})")
    if not ifis and object_type == "Agent":
        raise _fail(path, "an Agent needs one of mbox, mbox_sha1sum, openid, account")
    if "mbox" in value and not (
        isinstance(value["mbox"], str) and re.match(r"mailto:[^@\s]+@[^@\s]+\Z", value["mbox"])
    ):
        raise _fail(f"{path}.mbox", "must be a mailto: IRI")
    if "mbox_sha1sum" in value and not (
        isinstance(value["mbox_sha1sum"], str) and _SHA1.match(value["mbox_sha1sum"])
    ):
        raise _fail(f"{path}.mbox_sha1sum", "must be the hex SHA-1 of a mailto: IRI")
    if "openid" in value:
        check_iri(value["openid"], f"{path}.openid")
    if "account" in value:
        account = _object(value["account"], f"{path}.account", {"homePage", "name"}, ("homePage", "name"))
        _irl(account["homePage"], f"{path}.account.homePage")
        _string(account["name"], f"{path}.account.name")
    if object_type == "Group":
        if "member" in value:
            if not isinstance(value["member"], list):
                raise _fail(f"{path}.member", "must be an array of Agents")
            for i, member in enumerate(value["member"]):
                check_agent(member, f"{path}.member[{i}]", kind="Agent")
        elif not ifis:
            raise _fail(f"{path}.member", "an anonymous Group needs its members")


def _verb(value: Any, path: str) -> None:
    verb = _object(value, path, {"id", "display"}, ("id",))
    check_iri(verb["id"], f"{path}.id")
    if "display" in verb:
        _language_map(verb["display"], f"{path}.display")


def _components(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise _fail(path, "must be an array of interaction components")
    ids = set()
    for i, item in enumerate(value):
        component = _object(item, f"{path}[{i}]", {"id", "description"}, ("id",))
        if _string(component["id"], f"{path}[{i}].id") in ids:
            raise _fail(f"{path}[{i}].id", "repeats another component's id")
        ids.add(component["id"])
        if "description" in component:
            _language_map(component["description"], f"{path}[{i}].description")


def _definition(value: Any, path: str) -> None:
    definition = _object(
        value,
        path,
        {
            "name",
            "description",
            "type",
            "moreInfo",
            "extensions",
            "interactionType",
            "correctResponsesPattern",
        }
        | _COMPONENT_LISTS,
    )
    for key in ("name", "description"):
        if key in definition:
            _language_map(definition[key], f"{path}.{key}")
    if "type" in definition:
        check_iri(definition["type"], f"{path}.type")
    if "moreInfo" in definition:
        _irl(definition["moreInfo"], f"{path}.moreInfo")
    if "extensions" in definition:
        _extensions(definition["extensions"], f"{path}.extensions")
    interaction = definition.get("interactionType")
    if interaction is not None and interaction not in _INTERACTION_TYPES:
        raise _fail(f"{path}.interactionType", f"must be one of {', '.join(sorted(_INTERACTION_TYPES))}")
    if "correctResponsesPattern" in definition:
        if interaction is None:
            raise _fail(f"{path}.correctResponsesPattern", "needs an interactionType")
        pattern = definition["correctResponsesPattern"]
        if not isinstance(pattern, list) or not all(isinstance(p, str) for p in pattern):
            raise _fail(f"{path}.correctResponsesPattern", "must be an array of strings")
    allowed = {
        "choice": {"choices"},
        "sequencing": {"choices"},
        "likert": {"scale"},
        "matching": {"source", "target"},
        "performance": {"steps"},
    }.get(interaction or "", set())
    for key in _COMPONENT_LISTS & definition.keys():
        if key not in allowed:
            raise _fail(f"{path}.{key}", f"is not a component list of interactionType {interaction!r}")
        _components(definition[key], f"{path}.{key}")


def _activity(value: Any, path: str) -> None:
    activity = _object(value, path, {"objectType", "id", "definition"}, ("id",))
    if activity.get("objectType", "Activity") != "Activity":
        raise _fail(f"{path}.objectType", "must be Activity")
    check_iri(activity["id"], f"{path}.id")
    if "definition" in activity:
        _definition(activity["definition"], f"{path}.definition")


def _statement_ref(value: Any, path: str) -> None:
    ref = _object(value, path, {"objectType", "id"}, ("objectType", "id"))
    if ref["objectType"] != "StatementRef":
        raise _fail(f"{path}.objectType", "must be StatementRef")
    check_uuid(ref["id"], f"{path}.id")


def _score(value: Any, path: str) -> None:
    score = _object(value, path, {"scaled", "raw", "min", "max"})
    numbers = {k: _number(v, f"{path}.{k}") for k, v in score.items()}
    if "scaled" in numbers and not -1 <= numbers["scaled"] <= 1:
        raise _fail(f"{path}.scaled", "must be between -1 and 1")
    low, high, raw = numbers.get("min"), numbers.get("max"), numbers.get("raw")
    if low is not None and high is not None and not low < high:
        raise _fail(f"{path}.max", "must be greater than min")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        raise _fail(f"{path}.raw", "must lie between min and max")


def _result(value: Any, path: str) -> None:
    result = _object(value, path, {"score", "success", "completion", "response", "duration", "extensions"})
    if "score" in result:
        _score(result["score"], f"{path}.score")
    for key in ("success", "completion"):
        if key in result:
            _bool(result[key], f"{path}.{key}")
    if "response" in result:
        _string(result["response"], f"{path}.response")
    if "duration" in result and not (
        isinstance(result["duration"], str) and _DURATION.match(result["duration"])
    ):
        raise _fail(f"{path}.duration", "must be an ISO 8601 duration")
    if "extensions" in result:
        _extensions(result["extensions"], f"{path}.extensions")


def _context(value: Any, path: str, object_is_activity: bool) -> None:
    context = _object(
        value,
        path,
        {
            "registration",
            "instructor",
            "team",
            "contextActivities",
            "revision",
            "platform",
            "language",
            "statement",
            "extensions",
            "contextAgents",
            "contextGroups",
        },
    )
    if "registration" in context:
        check_uuid(context["registration"], f"{path}.registration")
    if "instructor" in context:
        check_agent(context["instructor"], f"{path}.instructor")
    if "team" in context:
        check_agent(context["team"], f"{path}.team", kind="Group")
    for key in ("revision", "platform"):
        if key in context:
            _string(context[key], f"{path}.{key}")
            if not object_is_activity:
                raise _fail(f"{path}.{key}", "is allowed only when the object is an Activity")
    if "language" in context and not (
        isinstance(context["language"], str) and _LANG.match(context["language"])
    ):
        raise _fail(f"{path}.language", "must be an RFC 5646 language tag")
    if "statement" in context:
        _statement_ref(context["statement"], f"{path}.statement")
    if "extensions" in context:
        _extensions(context["extensions"], f"{path}.extensions")
    if "contextActivities" in context:
        activities = _object(
            context["contextActivities"], f"{path}.contextActivities", _CONTEXT_ACTIVITY_KEYS
        )
        for key, item in activities.items():
            items = item if isinstance(item, list) else [item]
            for i, activity in enumerate(items):
                _activity(activity, f"{path}.contextActivities.{key}[{i}]")
    for key, object_type, member, kind in (
        ("contextAgents", "contextAgent", "agent", "Agent"),
        ("contextGroups", "contextGroup", "group", "Group"),
    ):
        if key not in context:
            continue
        if not isinstance(context[key], list):
            raise _fail(f"{path}.{key}", "must be an array")
        for i, item in enumerate(context[key]):
            where = f"{path}.{key}[{i}]"
            entry = _object(item, where, {"objectType", member, "relevantTypes"}, ("objectType", member))
            if entry["objectType"] != object_type:
                raise _fail(f"{where}.objectType", f"must be {object_type}")
            check_agent(entry[member], f"{where}.{member}", kind=kind)
            if "relevantTypes" in entry:
                types = entry["relevantTypes"]
                if not isinstance(types, list) or not types:
                    raise _fail(f"{where}.relevantTypes", "must be a non-empty array of IRIs")
                for j, iri in enumerate(types):
                    check_iri(iri, f"{where}.relevantTypes[{j}]")


def _attachments(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise _fail(path, "must be an array of attachments")
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        attachment = _object(
            item,
            where,
            {"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"},
            ("usageType", "display", "contentType", "length", "sha2"),
        )
        check_iri(attachment["usageType"], f"{where}.usageType")
        _language_map(attachment["display"], f"{where}.display")
        if "description" in attachment:
            _language_map(attachment["description"], f"{where}.description")
        _string(attachment["contentType"], f"{where}.contentType")
        if type(attachment["length"]) is not int or attachment["length"] < 0:
            raise _fail(f"{where}.length", "must be a non-negative integer")
        if not (isinstance(attachment["sha2"], str) and _SHA2.match(attachment["sha2"])):
            raise _fail(f"{where}.sha2", "must be a hex SHA-2 digest")
        if "fileUrl" in attachment:
            _irl(attachment["fileUrl"], f"{where}.fileUrl")


def _core(statement: dict[str, Any], path: str, *, sub: bool) -> None:
    for key in ("actor", "verb", "object"):
        if key not in statement:
            raise _fail(f"{path}.{key}", "is required")
    check_agent(statement["actor"], f"{path}.actor")
    _verb(statement["verb"], f"{path}.verb")
    target = statement["object"]
    if not isinstance(target, dict):
        raise _fail(f"{path}.object", "must be an object")
    object_type = target.get("objectType", "Activity")
    if object_type == "Activity":
        _activity(target, f"{path}.object")
    elif object_type in ("Agent", "Group"):
        check_agent(target, f"{path}.object")
    elif object_type == "StatementRef":
        _statement_ref(target, f"{path}.object")
    elif object_type == "SubStatement" and not sub:
        substatement = _object(target, f"{path}.object", _SUBSTATEMENT)
        _core(substatement, f"{path}.object", sub=True)
    else:
        raise _fail(
            f"{path}.object.objectType",
            "must be Activity, Agent, Group, StatementRef"
            + ("" if sub else " or SubStatement")
            + ("" if not sub else " (no SubStatement in a SubStatement)"),
        )
    if statement["verb"]["id"] == VOIDED and object_type != "StatementRef":
        raise _fail(f"{path}.object", "a voiding statement's object must be a StatementRef")
    if "result" in statement:
        _result(statement["result"], f"{path}.result")
    if "context" in statement:
        _context(statement["context"], f"{path}.context", object_type == "Activity")
    if "timestamp" in statement:
        parse_timestamp(statement["timestamp"], f"{path}.timestamp")
    if "attachments" in statement:
        _attachments(statement["attachments"], f"{path}.attachments")


def check_statement(statement: Any, path: str = "statement") -> dict[str, Any]:
    """`statement` if it keeps every rule of xAPI 2.0; BadStatement naming the first fault."""
    _object(statement, path, _STATEMENT)
    if "id" in statement:
        check_uuid(statement["id"], f"{path}.id")
    if "version" in statement and not (
        isinstance(statement["version"], str) and re.match(r"[12]\.0(\.\d+)?\Z", statement["version"])
    ):
        raise _fail(f"{path}.version", "must be a 1.0.x or 2.0.x version")
    if "stored" in statement:
        parse_timestamp(statement["stored"], f"{path}.stored")
    if "authority" in statement:
        check_agent(statement["authority"], f"{path}.authority")
    _core(statement, path, sub=False)
    checked: dict[str, Any] = statement
    return checked


# -- learners ------------------------------------------------------------------------------


def is_resident_id(text: str) -> bool:
    """Whether `text` holds an 18-character resident identity number with a valid check character."""
    for match in _RESIDENT_ID.finditer(text):
        number = match[0].upper()
        total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
        if _ID_CHECK[total % 11] == number[17]:
            return True
    return False


def agents_of(statement: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Agent or Group of a (valid) statement, with its path, members included."""

    def with_members(agent: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(agent, dict):
            yield path, agent
            for i, member in enumerate(
                agent.get("member", []) if isinstance(agent.get("member"), list) else []
            ):
                yield from with_members(member, f"{path}.member[{i}]")

    def of(part: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from with_members(part.get("actor"), f"{path}.actor")
        target = part.get("object", {})
        if target.get("objectType") in ("Agent", "Group"):
            yield from with_members(target, f"{path}.object")
        elif target.get("objectType") == "SubStatement":
            yield from of(target, f"{path}.object")
        context = part.get("context", {})
        for key in ("instructor", "team"):
            if key in context:
                yield from with_members(context[key], f"{path}.context.{key}")
        for key, member in (("contextAgents", "agent"), ("contextGroups", "group")):
            for i, entry in enumerate(context.get(key, [])):
                yield from with_members(entry.get(member), f"{path}.context.{key}[{i}].{member}")

    yield from of(statement, "statement")


def check_learner(statement: dict[str, Any]) -> None:
    """The actor is an opaque account (or its Group's members are); no agent is named by a
    resident identity number."""
    for path, agent in agents_of(statement):
        values = [
            agent.get("name"),
            agent.get("mbox"),
            agent.get("openid"),
            (agent.get("account") or {}).get("name"),
            (agent.get("account") or {}).get("homePage"),
        ]
        if any(isinstance(v, str) and is_resident_id(v) for v in values):
            raise NationalIdLearner(
                f"{path}: a learner is never named by a resident identity number "
                "(身份证号); use an opaque account or the identity card id",
                path=path,
            )
    actor = statement["actor"]
    learners = (
        actor.get("member", []) if actor.get("objectType") == "Group" and "account" not in actor else [actor]
    )
    for i, learner in enumerate(learners):
        if "account" not in learner:
            where = "statement.actor" + (f".member[{i}]" if learner is not actor else "")
            raise LearnerNotOpaque(
                f"{where}: a learner is an opaque account (homePage and an opaque "
                "id) or an identity card (homePage …/v1/identity/cards, name the "
                "card id), not an mbox, mbox_sha1sum or openid",
                path=where,
            )
