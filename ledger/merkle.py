"""Salted record hashes and keccak256 Merkle trees.

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

Canonical JSON, which record hashes are taken of, is in ``ledger.canonical``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from ledger.errors import InvalidInput, NotFound

__all__ = [
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "MerkleTree",
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
        from sha3 import keccak_256
    except ImportError:
        from eth_hash.auto import keccak

        return keccak

    def _fast(data: bytes) -> bytes:
        digest: bytes = keccak_256(data).digest()
        return digest

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
