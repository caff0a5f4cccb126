"""Canonical JSON: the one byte form of a JSON value that is hashed, signed and anchored.

``canonical_json`` follows RFC 8785 (JCS): object keys sorted by their
UTF-16 code units, no whitespace, UTF-8, strings escaped as ECMAScript's JSON.stringify
does, floats in ECMAScript ``Number.prototype.toString`` form (shortest round-trip
digits: ``1.0 -> 1``, ``1e21 -> 1e+21``, ``-0.0 -> 0``). NaN, Infinity, lone surrogates,
non-string keys and non-JSON types are rejected. One deliberate difference: Python
integers are written exactly, with all their digits, where JCS would round them to an
IEEE double (equal for |n| <= 2**53). Floats round-trip as IEEE doubles: an integral
float of 1e16 or more is written without a fraction and reads back as an equal int.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ledger.errors import InvalidInput

__all__ = ["canonical_json"]


def canonical_json(obj: Any) -> bytes:
    """RFC 8785-style canonical UTF-8 bytes of a JSON value (see the module docstring)."""
    if _plain(obj):
        # Without floats or keys outside the BMP, the stdlib encoder writes exactly the
        # same bytes (same escapes, code-point order = UTF-16 order), in C.
        try:
            return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("string contains a lone surrogate, not valid Unicode") from None
    parts: list[str] = []
    _emit(obj, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("string contains a lone surrogate, not valid Unicode") from None


def _plain(value: Any) -> bool:
    """JSON made of dicts with str keys in the BMP, lists, str, int, bool and None only."""
    # Scalars are checked where they are met, so only containers go on the stack: this runs
    # on every verification (the leaf of the signed payload).
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in item:
                if type(key) is not str or not (key.isascii() or not key or max(key) <= "\uffff"):
                    return False
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        elif item is None or type(item) in (str, int, bool):
            continue
        else:
            return False
        for inner in children:
            kind = type(inner)
            if kind is str or kind is int or kind is bool or inner is None:
                continue
            stack.append(inner)  # a container, or something that is refused when popped
    return True


def _emit(value: Any, out: list[str]) -> None:
    # bool before int: bool is a subclass of int
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_es_number(value))
    elif isinstance(value, str):
        out.append(_es_string(value))
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise InvalidInput(f"object keys must be strings, got {type(key).__name__}")
        out.append("{")
        for n, key in enumerate(sorted(value, key=_utf16_key)):
            if n:
                out.append(",")
            out.append(_es_string(key))
            out.append(":")
            _emit(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _emit(item, out)
        out.append("]")
    else:
        raise InvalidInput(f"{type(value).__name__} is not a JSON type")


def _utf16_key(key: str) -> bytes:
    # JCS sorts by UTF-16 code units; big-endian bytes compare in the same order.
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError:
        raise InvalidInput("object key contains a lone surrogate") from None


def _es_string(s: str) -> str:
    # Python's escaping with ensure_ascii=False matches JSON.stringify: \" \\ \b \f \n \r \t,
    # other C0 controls as lowercase \u00xx, everything else literal.
    return json.dumps(s, ensure_ascii=False)


def _es_number(x: float) -> str:
    """ECMAScript Number.prototype.toString of a finite double (JCS section 3.2.2.3)."""
    if not math.isfinite(x):
        raise InvalidInput("NaN and Infinity are not JSON numbers")
    if x == 0:
        return "0"  # also -0.0
    if x < 0:
        return "-" + _es_number(-x)
    # repr gives the shortest digits that round-trip (closest on ties), as ECMAScript.
    _, digit_tuple, exp = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = int(exp) + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
