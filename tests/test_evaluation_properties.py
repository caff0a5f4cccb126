"""Property tests: the canonical form and leaf of a sealed term record (against the rfc8785
package and pycryptodome's keccak, not our own code), and the notice period's working days
(against chinese_calendar's own get_workdays, and a weekday count where holidays are unknown)."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import rfc8785
from Crypto.Hash import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.evaluation.workdays import add_working_days, holidays_known, is_working_day
from ledger.merkle import record_hash

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
hex32 = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
sealed_records = st.fixed_dictionaries(
    {
        "type": st.just("eduledger-evaluation-term-record/1"),
        "issuer": text,
        "school": text,
        "term": text,
        "framework": st.fixed_dictionaries(
            {"id": text, "owner": text, "version": st.integers(1, 10**6), "sha256": text}
        ),
        "student": st.fixed_dictionaries({"cardId": hex32, "className": text}),
        "records": st.lists(
            st.fixed_dictionaries(
                {
                    "id": text,
                    "domain": st.sampled_from(["moral", "intellectual", "physical", "aesthetic", "labour"]),
                    "indicator": text,
                    "author": st.fixed_dictionaries({"role": st.sampled_from(["teacher", "student"])}),
                    "occurredOn": st.dates().map(date.isoformat),
                    "title": text,
                    "text": text,
                    "evidence": st.lists(
                        st.fixed_dictionaries(
                            {
                                "type": text,
                                "mediaType": text,
                                "sha256": text,
                                "size": st.integers(0, 2**53 - 1),
                            }
                        ),
                        max_size=3,
                    ),
                    "objections": st.lists(
                        st.fixed_dictionaries(
                            {
                                "raisedBy": st.sampled_from(["student", "parent"]),
                                "outcome": st.sampled_from(["kept", "amended", None]),
                            }
                        ),
                        max_size=2,
                    ),
                }
            ),
            max_size=4,
        ),
        "scores": st.lists(
            st.fixed_dictionaries({"indicator": text, "value": text, "teacherCard": hex32}), max_size=8
        ),
        "profile": st.dictionaries(
            text,
            st.fixed_dictionaries(
                {"level": st.sampled_from(["A", "B", "C", "D", None]), "scored": st.integers(0, 50)}
            ),
            max_size=5,
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(sealed_records, st.binary(min_size=32, max_size=32))
def test_a_sealed_record_is_canonical_and_its_leaf_is_keccak_of_salt_and_bytes(document, salt) -> None:
    ours = canonical_json(document)
    assert ours == rfc8785.dumps(document)
    assert record_hash(salt, ours) == keccak.new(digest_bits=256, data=salt + ours).digest()
    # key order and whitespace of the input do not change the leaf
    shuffled = {k: document[k] for k in reversed(list(document))}
    assert record_hash(salt, canonical_json(shuffled)) == record_hash(salt, ours)


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2004, 1, 1), date(2026, 8, 31)), st.integers(1, 20))
def test_working_days_where_the_holidays_are_known(start: date, days: int) -> None:
    end = add_working_days(start, days)
    assert chinese_calendar.is_workday(end)
    assert len(chinese_calendar.get_workdays(start + timedelta(days=1), end)) == days


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2027, 1, 1), date(2090, 12, 1)), st.integers(1, 60))
def test_working_days_where_they_are_not_are_weekdays(start: date, days: int) -> None:
    assert not holidays_known(start)
    end = add_working_days(start, days)
    weekdays = sum(
        1 for n in range(1, (end - start).days + 1) if (start + timedelta(days=n)).isoweekday() <= 5
    )
    assert weekdays == days and end.isoweekday() <= 5


def test_the_national_day_holiday_and_its_make_up_saturday() -> None:
    # 2025: 1-8 October off; Sunday 28 September and Saturday 11 October worked (State Council notice)
    assert not is_working_day(date(2025, 10, 3)) and is_working_day(date(2025, 10, 11))
    assert add_working_days(date(2025, 9, 30), 5) == date(2025, 10, 14)  # 9, 10, 11 (Sat), 13, 14
    assert add_working_days(date(2025, 11, 3), 5) == date(2025, 11, 10)
