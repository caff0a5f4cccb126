"""The indicator system of comprehensive quality evaluation (综合素质评价), and its errors.

A framework is published for a school year by the bureau: the five domains (五育: 德 moral,
智 intellectual, 体 physical, 美 aesthetic, 劳 labour), each with its indicators. An
indicator has a code (unique in the framework), a name, a weight (an integer percentage
of its domain: a domain's weights sum to 100), a scale (levels such as A/B/C/D, best first,
or points in an integer range such as 0-100) and the evidence types a factual record of it
may carry. A school may layer its own version on a bureau version: it adds indicators under
domains and, for each domain it adds to, gives the weights of all that domain's indicators
again (so that they still sum to 100); what it uses is the merged ("effective") framework.

Weights are integers on purpose: they are hashed and sealed, and an integer has one
canonical form where a float has several readings.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ledger.errors import Conflict, InvalidInput, NotFound, PermissionDenied

__all__ = [
    "DOMAINS",
    "Domain",
    "FrameworkBody",
    "Indicator",
    "LevelScale",
    "PointScale",
    "RecordStatus",
    "SchoolLayerBody",
    "TERM_RE",
    "check_value",
    "level_of",
]


class Domain(StrEnum):
    MORAL = "moral"
    INTELLECTUAL = "intellectual"
    PHYSICAL = "physical"
    AESTHETIC = "aesthetic"
    LABOUR = "labour"

    @property
    def label_zh(self) -> str:
        return {"moral": "德", "intellectual": "智", "physical": "体", "aesthetic": "美", "labour": "劳"}[
            self.value
        ]


DOMAINS: Final = tuple(Domain)
SCHOOL_YEAR_RE: Final = re.compile(r"(20[0-9]{2})-(20[0-9]{2})")
TERM_RE: Final = re.compile(r"(20[0-9]{2}-20[0-9]{2})-([12])")  # 2025-2026-1: the year's first term
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")]
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
LevelName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z+-]{0,3}$")]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class LevelScale(BaseModel):
    """Levels, best first: ["A", "B", "C", "D"]."""

    model_config = _STRICT
    type: Literal["levels"]
    levels: list[LevelName] = Field(min_length=2, max_length=10)


class PointScale(BaseModel):
    """Whole points from `min` to `max` (0-100)."""

    model_config = _STRICT
    type: Literal["points"]
    min: int = Field(ge=0, le=1000)
    max: int = Field(ge=1, le=1000)


Scale = Annotated[LevelScale | PointScale, Field(discriminator="type")]


class Indicator(BaseModel):
    model_config = _STRICT
    code: Code
    name: Text
    weight: int = Field(ge=1, le=100, description="percent of its domain")
    scale: Scale
    evidence_types: list[Text] = Field(default_factory=list, max_length=20)


class DomainIndicators(BaseModel):
    model_config = _STRICT
    domain: Domain
    indicators: list[Indicator] = Field(min_length=1, max_length=50)


class FrameworkBody(BaseModel):
    """What the bureau publishes (and, merged, what a school's version is)."""

    model_config = _STRICT
    school_year: Annotated[str, StringConstraints(pattern=SCHOOL_YEAR_RE.pattern)]
    title: Text
    domains: list[DomainIndicators] = Field(min_length=5, max_length=5)


class SchoolIndicator(Indicator):
    domain: Domain


class SchoolLayerBody(BaseModel):
    """A school's version: indicators it adds under a bureau version's domains, and the new
    weights of every indicator of each domain it adds to."""

    model_config = _STRICT
    base_framework_id: str = Field(min_length=1, max_length=36)
    indicators: list[SchoolIndicator] = Field(min_length=1, max_length=100)
    weights: dict[Domain, dict[Code, int]] = Field(description="domain -> indicator code -> weight")


class RecordStatus(StrEnum):
    DRAFT = "draft"  # 写实记录, entered
    SELECTED = "selected"  # 整理遴选: kept for the archive
    NOT_SELECTED = "not_selected"
    IN_NOTICE = "in_notice"  # 公示
    OBJECTED = "objected"  # held by an open objection
    LOCKED = "locked"


def check_framework(body: FrameworkBody) -> None:
    """Five distinct domains, codes unique, each domain's weights summing to 100, valid scales."""
    seen = [d.domain for d in body.domains]
    if sorted(seen) != sorted(DOMAINS):
        raise InvalidInput(
            "a framework has the five domains (moral, intellectual, physical, aesthetic, labour), each once",
            code="bad_domains",
        )
    start, end = (int(y) for y in SCHOOL_YEAR_RE.fullmatch(body.school_year).groups())  # type: ignore[union-attr]
    if end != start + 1:
        raise InvalidInput("a school year is two consecutive years: 2025-2026", code="bad_school_year")
    codes: set[str] = set()
    for domain in body.domains:
        for indicator in domain.indicators:
            if indicator.code in codes:
                raise InvalidInput(
                    f"indicator code {indicator.code} is used twice", code="duplicate_indicator"
                )
            codes.add(indicator.code)
            check_scale(indicator)
        total = sum(i.weight for i in domain.indicators)
        if total != 100:
            raise InvalidInput(
                f"the weights of domain {domain.domain.value} sum to {total}, not 100", code="bad_weights"
            )


def check_scale(indicator: Indicator) -> None:
    scale = indicator.scale
    if isinstance(scale, PointScale) and scale.min >= scale.max:
        raise InvalidInput(
            f"indicator {indicator.code}: a point scale runs from min to a greater max", code="bad_scale"
        )
    if isinstance(scale, LevelScale) and len(set(scale.levels)) != len(scale.levels):
        raise InvalidInput(f"indicator {indicator.code}: a level is listed twice", code="bad_scale")


def merge_layer(base: FrameworkBody, layer: SchoolLayerBody, title: str) -> FrameworkBody:
    """The school's effective framework: the bureau's, with the school's indicators added and
    the re-given weights applied; checked like the bureau's."""
    domains = []
    for entry in base.domains:
        added = [
            Indicator(**i.model_dump(exclude={"domain"}))
            for i in layer.indicators
            if i.domain is entry.domain
        ]
        indicators = [*entry.indicators, *added]
        weights = layer.weights.get(entry.domain)
        if added and weights is None:
            raise InvalidInput(
                f"domain {entry.domain.value} gets indicators: give the weights of all its indicators",
                code="bad_weights",
            )
        if weights is not None:
            codes = {i.code for i in indicators}
            if set(weights) != codes:
                raise InvalidInput(
                    f"the weights of domain {entry.domain.value} must name exactly its "
                    f"indicators ({', '.join(sorted(codes))})",
                    code="bad_weights",
                )
            if any(not 1 <= w <= 100 for w in weights.values()):
                raise InvalidInput("a weight is 1 to 100", code="bad_weights")
            indicators = [i.model_copy(update={"weight": weights[i.code]}) for i in indicators]
        domains.append(DomainIndicators(domain=entry.domain, indicators=indicators))
    merged = FrameworkBody(school_year=base.school_year, title=title, domains=domains)
    check_framework(merged)
    return merged


def indicators_of(body: FrameworkBody) -> dict[str, tuple[Domain, Indicator]]:
    return {i.code: (d.domain, i) for d in body.domains for i in d.indicators}


def check_value(indicator: Indicator, value: str) -> str:
    """A score on the indicator's scale, in its one written form (points without leading zeros)."""
    scale = indicator.scale
    if isinstance(scale, LevelScale):
        if value not in scale.levels:
            raise InvalidInput(
                f"{value[:20]!r} is not a level of {indicator.code} ({'/'.join(scale.levels)})",
                code="score_out_of_scale",
            )
        return value
    if not re.fullmatch(r"[0-9]{1,4}", value) or not scale.min <= int(value) <= scale.max:
        raise InvalidInput(
            f"{value[:20]!r} is not a whole number from {scale.min} to {scale.max} ({indicator.code})",
            code="score_out_of_scale",
        )
    return str(int(value))


LEVELS: Final = ("A", "B", "C", "D")


def fraction_of(indicator: Indicator, value: str) -> float:
    """Where a value sits on its scale, 0 (worst) to 1 (best)."""
    scale = indicator.scale
    if isinstance(scale, LevelScale):
        return 1 - scale.levels.index(value) / (len(scale.levels) - 1)
    return (int(value) - scale.min) / (scale.max - scale.min)


def level_of(fraction: float) -> str:
    """A domain's result as a level (A >= 85%, B >= 70%, C >= 60%, else D): results are levels
    and profiles, never ranks."""
    return "A" if fraction >= 0.85 else "B" if fraction >= 0.70 else "C" if fraction >= 0.60 else "D"


# -- errors (each a 4xx with a machine code) ----------------------------------------------


class TermSealed(Conflict):
    def __init__(self, term: str) -> None:
        super().__init__(
            f"term {term} is sealed (or being sealed): its records can no longer change", code="term_sealed"
        )


class NotTheirClass(PermissionDenied):
    def __init__(self, class_name: str) -> None:
        super().__init__(f"this teacher does not teach class {class_name} this term", code="not_their_class")


class FrameworkNotFound(NotFound):
    def __init__(self, framework_id: str) -> None:
        super().__init__(f"no framework {framework_id[:40]}", code="framework_not_found")
