"""Salted record hashes, keccak256 Merkle trees and canonical JSON.

Exact rules (the on-chain verifier implements the same; ``H`` is keccak256, ``||`` is
byte concatenation, every hash and leaf is 32 bytes):

1. Record hash (the *leaf*): ``leaf = H(salt || canonical_bytes)`` where ``salt`` is exactly
   32 random bytes (``new_salt()``) kept off chain beside the record. The salt makes a
   low-entropy record (a name, a grade) unguessable from its hash; erasing the salt
   leaves the on-chain hash unlinkable to the person.
2. Leaf node: ``H(0x00 || leaf)`` (33 bytes hashed).
3. Inner node: ``H(0x01 || min(a, b) || max(a, b))`` (65 bytes hashed), where ``a`` and
   ``b`` are the two child nodes and min/max compare them as unsigned 256-bit big-endian
   integers (the same order as comparing the 32-byte strings lexicographically; in
   Vyper: ``convert(a, uint256) < convert(b, uint256)``). Sorting each pair means a
   proof is a plain list of sibling hashes, with no left/right bits.
4. Levels: level 0 is the leaf nodes, in the order the leaves were given. Each next
   level pairs nodes (0, 1), (2, 3), ...; when a level has an odd count its last node
   is promoted unchanged to the next level (never duplicated: duplication would let
   two different leaf lists share a root). The root is the single node of the last
   level; a one-leaf tree's root is its leaf node and its proof is empty.
5. Proof of leaf ``i``: the sibling of its node at each level bottom-up, skipping levels
   where the node is promoted (it has no sibling). Verification::

       node = H(0x00 || leaf)
       for sibling in proof:
           node = H(0x01 || min(node, sibling) || max(node, sibling))
       return node == root

The 0x00/0x01 prefixes separate leaf nodes from inner nodes, so an inner node can never
be passed off as a leaf (second-preimage attack). A tree's leaves must be distinct:
each leaf carries exactly one on-chain status.

Canonical JSON (``canonical_json``) follows RFC 8785 (JCS): object keys sorted by their
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
import secrets
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ledger.errors import InvalidInput, NotFound

__all__ = [
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "MerkleTree",
    "canonical_json",
    "keccak256",
    "new_salt",
    "record_hash",
    "verify_proof",
]

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def _pick_keccak() -> Callable[[bytes], bytes]:
    # safe-pysha3 (C, optional) hashes ~8x faster than eth_hash's default pycryptodome
    # backend; both are the same keccak256 (tests check known vectors).
    try:
        from sha3 import keccak_256  # type: ignore[import-not-found]
    except ImportError:
        from eth_hash.auto import keccak

        return keccak

    def _fast(data: bytes) -> bytes:
        return keccak_256(data).digest()

    return _fast


keccak256: Callable[[bytes], bytes] = _pick_keccak()


def _bytes32(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInput(f"{what} must be {HASH_SIZE} bytes, got {type(value).__name__}")
    raw = bytes(value)
    if len(raw) != HASH_SIZE:
        raise InvalidInput(f"{what} must be {HASH_SIZE} bytes, got {len(raw)}")
    return raw


def new_salt() -> bytes:
    """32 bytes from the OS CSPRNG, to be stored off chain beside the record."""
    return secrets.token_bytes(HASH_SIZE)


def record_hash(salt: bytes, canonical_bytes: bytes) -> bytes:
    """The leaf of a record: ``keccak256(salt || canonical_bytes)``; salt is 32 bytes."""
    salt = _bytes32(salt, "salt")
    if not isinstance(canonical_bytes, bytes | bytearray | memoryview):
        raise InvalidInput("record bytes must be bytes (see canonical_json)")
    return keccak256(salt + bytes(canonical_bytes))


def _leaf_node(leaf: bytes) -> bytes:
    return keccak256(LEAF_PREFIX + leaf)


def _inner_node(a: bytes, b: bytes) -> bytes:
    # bytes comparison of equal-length strings == unsigned big-endian integer comparison
    return keccak256(NODE_PREFIX + a + b if a <= b else NODE_PREFIX + b + a)


class MerkleTree:
    """A tree over distinct 32-byte leaves, kept whole in memory (all levels).

    Building hashes each node once (~2n hashes); each proof then costs O(log n) lookups.
    """

    __slots__ = ("_index", "_levels", "_proofs", "leaves")

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if isinstance(leaves, bytes | bytearray | str):
            raise InvalidInput("leaves must be a sequence of 32-byte values, not one value")
        checked = tuple(_bytes32(leaf, f"leaf {i}") for i, leaf in enumerate(leaves))
        if not checked:
            raise InvalidInput("a Merkle tree needs at least one leaf")
        index: dict[bytes, int] = {}
        for i, leaf in enumerate(checked):
            first = index.setdefault(leaf, i)
            if first != i:
                raise InvalidInput(
                    f"duplicate leaf at positions {first} and {i}: 0x{leaf.hex()}",
                    positions=[first, i],
                )
        self.leaves: tuple[bytes, ...] = checked
        self._index = index
        self._proofs: list[list[bytes]] | None = None
        level = [_leaf_node(leaf) for leaf in checked]
        levels = [level]
        while len(level) > 1:
            nxt = [_inner_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])  # odd node promoted unchanged
            levels.append(nxt)
            level = nxt
        self._levels = levels

    def __len__(self) -> int:
        return len(self.leaves)

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    def index_of(self, leaf: bytes) -> int:
        """Position of ``leaf`` in the tree; NotFound if it is not a leaf of this tree."""
        try:
            return self._index[bytes(leaf)]
        except (KeyError, TypeError):
            raise NotFound("leaf is not in this tree") from None

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from the leaf's level up to (not including) the root."""
        if not isinstance(index, int) or isinstance(index, bool):
            raise InvalidInput("leaf index must be an integer")
        if not 0 <= index < len(self.leaves):
            raise InvalidInput(f"leaf index {index} out of range 0..{len(self.leaves) - 1}")
        path: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):  # else: the node is promoted, no sibling here
                path.append(level[sibling])
            index >>= 1
        return path

    def proofs(self) -> list[list[bytes]]:
        """Every leaf's proof, in leaf order; O(n log n) in total, once per tree (the
        anchoring service and its caller both want them). Do not change the lists."""
        if self._proofs is None:
            self._proofs = [self.proof(i) for i in range(len(self.leaves))]
        return self._proofs


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` links ``leaf`` to ``root`` under the rules above.

    Wrong-sized values raise InvalidInput (malformed input, not a failed check).
    """
    node = _leaf_node(_bytes32(leaf, "leaf"))
    expected = _bytes32(root, "root")
    for i, sibling in enumerate(proof):
        node = _inner_node(node, _bytes32(sibling, f"proof element {i}"))
    return node == expected


# --- canonical JSON -------------------------------------------------------------------


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
