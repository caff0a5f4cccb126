"""Merkle trees and record hashes (ledger.merkle), and canonical JSON (ledger.canonical)."""

from __future__ import annotations

import json
import random
import struct

import pytest
from eth_utils import keccak as eth_keccak
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput, NotFound
from ledger.merkle import MerkleTree, keccak256, new_salt, record_hash, verify_proof


def H(data: bytes) -> bytes:
    # Independent reference: eth_utils' keccak, not the module's own backend choice.
    return eth_keccak(data)


def leaf_node(leaf: bytes) -> bytes:
    return H(b"\x00" + leaf)


def inner(a: bytes, b: bytes) -> bytes:
    lo, hi = sorted([a, b], key=lambda x: int.from_bytes(x, "big"))
    return H(b"\x01" + lo + hi)


def reference_root(leaves: list[bytes]) -> bytes:
    """Recursive restatement of the level rule: pair up, promote an odd last node."""
    level = [leaf_node(x) for x in leaves]
    while len(level) > 1:
        pairs = [inner(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + (level[-1:] if len(level) % 2 else [])
    return level[0]


def make_leaves(n: int, seed: int = 0) -> list[bytes]:
    return [H(b"leaf" + seed.to_bytes(8, "big") + i.to_bytes(8, "big")) for i in range(n)]


def flip(value: bytes, position: int, mask: int) -> bytes:
    raw = bytearray(value)
    raw[position] ^= mask
    return bytes(raw)


# --- keccak and record hashes ---------------------------------------------------------


def test_keccak_backend_matches_known_vectors():
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    for n in (0, 1, 33, 65, 135, 136, 137, 1000):
        data = bytes(range(256)) * 4
        assert keccak256(data[:n]) == H(data[:n])


def test_record_hash_is_keccak_of_salt_then_bytes():
    salt = bytes(range(32))
    assert record_hash(salt, b'{"a":1}') == H(salt + b'{"a":1}')
    assert record_hash(salt, b"") == H(salt)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32), st.binary())
def test_record_hash_differs_with_salt(salt_a, salt_b, data):
    assume(salt_a != salt_b)
    assert record_hash(salt_a, data) != record_hash(salt_b, data)
    assert record_hash(salt_a, data) == record_hash(salt_a, data)


@given(st.binary(min_size=32, max_size=32), st.binary(), st.binary())
def test_record_hash_differs_with_data(salt, a, b):
    assume(a != b)
    assert record_hash(salt, a) != record_hash(salt, b)


@pytest.mark.parametrize("size", [0, 1, 16, 31, 33, 64])
def test_record_hash_rejects_salt_not_32_bytes(size):
    with pytest.raises(InvalidInput):
        record_hash(b"\x01" * size, b"data")


def test_record_hash_rejects_non_bytes():
    with pytest.raises(InvalidInput):
        record_hash("a" * 32, b"data")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        record_hash(new_salt(), "text")  # type: ignore[arg-type]


def test_new_salt_is_32_random_bytes():
    salts = {new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert all(len(s) == 32 for s in salts)


# --- tree shape, pinned by hand-written expressions -----------------------------------


def test_small_trees_follow_the_documented_rules():
    a, b, c, d, e = make_leaves(5)
    A, B, C, D, E = map(leaf_node, (a, b, c, d, e))
    assert MerkleTree([a]).root == A
    assert MerkleTree([a]).proof(0) == []
    assert MerkleTree([a, b]).root == inner(A, B)
    # three leaves: c is promoted unchanged, not paired with a copy of itself
    assert MerkleTree([a, b, c]).root == inner(inner(A, B), C)
    assert MerkleTree([a, b, c]).proof(2) == [inner(A, B)]
    assert MerkleTree([a, b, c, d]).root == inner(inner(A, B), inner(C, D))
    # five leaves: e is promoted twice
    tree5 = MerkleTree([a, b, c, d, e])
    assert tree5.root == inner(inner(inner(A, B), inner(C, D)), E)
    assert tree5.proof(4) == [inner(inner(A, B), inner(C, D))]
    assert tree5.proof(1) == [A, inner(C, D), E]


def test_pair_order_is_numeric_on_256_bit_values():
    lo = b"\x00" * 31 + b"\xff"
    hi = b"\x01" + b"\x00" * 31
    assert inner(lo, hi) == H(b"\x01" + lo + hi)
    tree = MerkleTree(make_leaves(2))
    x, y = (leaf_node(v) for v in tree.leaves)
    first, second = (x, y) if int.from_bytes(x, "big") < int.from_bytes(y, "big") else (y, x)
    assert tree.root == H(b"\x01" + first + second)


# --- every size: every proof verifies --------------------------------------------------


def test_every_leaf_verifies_for_every_size_up_to_300():
    leaves = make_leaves(300)
    for n in range(1, 301):
        tree = MerkleTree(leaves[:n])
        assert tree.root == reference_root(leaves[:n]), n
        proofs = tree.proofs()
        assert len(proofs) == n
        for i, (leaf, proof) in enumerate(zip(leaves[:n], proofs, strict=True)):
            assert len(proof) <= max(0, (n - 1).bit_length())
            assert verify_proof(leaf, proof, tree.root), (n, i)


@pytest.mark.parametrize("n", [511, 512, 513, 1023, 1024, 1025, 4097, 10_000])
def test_every_leaf_verifies_for_large_sizes(n):
    leaves = make_leaves(n, seed=n)
    tree = MerkleTree(leaves)
    assert tree.root == reference_root(leaves)
    for leaf, proof in zip(leaves, tree.proofs(), strict=True):
        assert verify_proof(leaf, proof, tree.root)


def test_proofs_equals_proof_by_index():
    tree = MerkleTree(make_leaves(77))
    assert tree.proofs() == [tree.proof(i) for i in range(77)]
    assert len(tree) == 77
    assert tree.index_of(tree.leaves[40]) == 40


# --- tampering -------------------------------------------------------------------------

tree_and_index = st.integers(1, 200).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, 2**32))
)
byte_flip = st.tuples(st.integers(0, 31), st.integers(1, 255))


@given(tree_and_index, byte_flip)
def test_changing_any_byte_of_the_leaf_fails(params, change):
    n, i, seed = params
    tree = MerkleTree(make_leaves(n, seed))
    leaf, proof = tree.leaves[i], tree.proof(i)
    assert verify_proof(leaf, proof, tree.root)
    assert not verify_proof(flip(leaf, *change), proof, tree.root)


@given(tree_and_index, byte_flip)
def test_changing_any_byte_of_the_root_fails(params, change):
    n, i, seed = params
    tree = MerkleTree(make_leaves(n, seed))
    assert not verify_proof(tree.leaves[i], tree.proof(i), flip(tree.root, *change))


@given(
    st.integers(2, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.data(),
    byte_flip,
)
def test_changing_any_byte_of_any_proof_element_fails(params, data, change):
    n, i = params
    tree = MerkleTree(make_leaves(n))
    proof = tree.proof(i)
    assume(proof)
    k = data.draw(st.integers(0, len(proof) - 1))
    tampered = [*proof[:k], flip(proof[k], *change), *proof[k + 1 :]]
    assert not verify_proof(tree.leaves[i], tampered, tree.root)


@given(st.integers(2, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_truncated_extended_or_reordered_proof_fails(params):
    n, i = params
    tree = MerkleTree(make_leaves(n))
    leaf, proof = tree.leaves[i], tree.proof(i)
    assert not verify_proof(leaf, proof[:-1], tree.root)
    assert not verify_proof(leaf, [*proof, proof[-1]], tree.root)
    if len(proof) >= 2 and proof[0] != proof[1]:
        assert not verify_proof(leaf, [proof[1], proof[0], *proof[2:]], tree.root)


@given(
    st.integers(2, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, n - 1)))
)
def test_proof_for_one_leaf_does_not_verify_another(params):
    n, i, j = params
    assume(i != j)
    tree = MerkleTree(make_leaves(n))
    assert not verify_proof(tree.leaves[j], tree.proof(i), tree.root)


@given(tree_and_index, st.integers(1, 200))
def test_leaf_of_another_tree_does_not_verify(params, m):
    n, i, seed = params
    tree = MerkleTree(make_leaves(n, seed))
    other = MerkleTree(make_leaves(m, seed + 1))
    j = i % m
    # another tree's leaf with its own proof, or with this tree's proof, fails here
    assert not verify_proof(other.leaves[j], other.proof(j), tree.root)
    assert not verify_proof(other.leaves[j], tree.proof(i), tree.root)


def test_inner_node_is_not_accepted_as_a_leaf():
    # Second-preimage attempt: present a level-1 node as if it were a leaf.
    a, b, c, d = make_leaves(4)
    tree = MerkleTree([a, b, c, d])
    left = inner(leaf_node(a), leaf_node(b))
    right = inner(leaf_node(c), leaf_node(d))
    assert tree.root == inner(left, right)
    assert not verify_proof(left, [right], tree.root)
    # ...nor a leaf node in place of its leaf
    assert not verify_proof(leaf_node(a), tree.proof(0), tree.root)


def test_root_depends_on_leaf_order_and_content():
    leaves = make_leaves(6)
    assert MerkleTree(leaves).root != MerkleTree(leaves[::-1]).root
    assert MerkleTree(leaves).root != MerkleTree(leaves[:5]).root


# --- bad input -------------------------------------------------------------------------


def test_tree_rejects_bad_leaves():
    with pytest.raises(InvalidInput):
        MerkleTree([])
    with pytest.raises(InvalidInput):
        MerkleTree([b"\x00" * 31])
    with pytest.raises(InvalidInput):
        MerkleTree(["00" * 32])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        MerkleTree(b"\x00" * 32)  # a single value, not a sequence
    leaves = make_leaves(3)
    with pytest.raises(InvalidInput) as err:
        MerkleTree([*leaves, leaves[1]])
    assert err.value.details["positions"] == [1, 3]


def test_proof_index_out_of_range():
    tree = MerkleTree(make_leaves(3))
    for bad in (-1, 3, 100):
        with pytest.raises(InvalidInput):
            tree.proof(bad)
    with pytest.raises(NotFound):
        tree.index_of(b"\x00" * 32)


def test_verify_rejects_malformed_sizes():
    tree = MerkleTree(make_leaves(4))
    leaf, proof = tree.leaves[0], tree.proof(0)
    with pytest.raises(InvalidInput):
        verify_proof(leaf[:31], proof, tree.root)
    with pytest.raises(InvalidInput):
        verify_proof(leaf, [proof[0] + b"\x00", *proof[1:]], tree.root)
    with pytest.raises(InvalidInput):
        verify_proof(leaf, proof, tree.root[:16])


# --- the same rules in a real Vyper contract ------------------------------------------

VYPER_VERIFIER = """
# pragma version ~=0.4.3

@external
@pure
def verify(leaf: bytes32, proof: DynArray[bytes32, 64], root: bytes32) -> bool:
    node: bytes32 = keccak256(concat(b"\\x00", leaf))
    for sib: bytes32 in proof:
        if convert(node, uint256) < convert(sib, uint256):
            node = keccak256(concat(b"\\x01", node, sib))
        else:
            node = keccak256(concat(b"\\x01", sib, node))
    return node == root
"""


@pytest.fixture(scope="module")
def vyper_verifier():
    vyper = pytest.importorskip("vyper")
    from web3 import EthereumTesterProvider, Web3

    out = vyper.compile_code(VYPER_VERIFIER, output_formats=["abi", "bytecode"])
    w3 = Web3(EthereumTesterProvider())
    factory = w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    tx = factory.constructor().transact({"from": w3.eth.accounts[0]})
    address = w3.eth.get_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=address, abi=out["abi"]).functions.verify


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_proofs_verify_in_the_documented_vyper_loop(vyper_verifier, n):
    tree = MerkleTree(make_leaves(n, seed=7))
    for i, (leaf, proof) in enumerate(zip(tree.leaves, tree.proofs(), strict=True)):
        assert vyper_verifier(leaf, proof, tree.root).call() is True
        other = tree.leaves[(i + 1) % n]
        if n > 1:
            assert vyper_verifier(other, proof, tree.root).call() is False
        assert vyper_verifier(leaf, proof, flip(tree.root, 0, 1)).call() is False


# --- canonical JSON --------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def same_json(original, loaded) -> bool:
    """Equality where floats compare as IEEE doubles (1e20 may read back as an int)."""
    if isinstance(original, float):
        return isinstance(loaded, int | float) and float(loaded) == original
    if isinstance(original, dict):
        return (
            isinstance(loaded, dict)
            and original.keys() == loaded.keys()
            and all(same_json(original[k], loaded[k]) for k in original)
        )
    if isinstance(original, list):
        return (
            isinstance(loaded, list)
            and len(original) == len(loaded)
            and all(same_json(a, b) for a, b in zip(original, loaded, strict=True))
        )
    return type(original) is type(loaded) and original == loaded


@given(json_values)
def test_canonical_json_round_trips(value):
    out = canonical_json(value)
    assert same_json(value, json.loads(out))
    # canonical form is a fixed point
    assert canonical_json(json.loads(out)) == out


@given(json_values.filter(lambda v: not _has_float(v)))
def test_canonical_json_round_trips_exactly_without_floats(value):
    assert json.loads(canonical_json(value)) == value


def _has_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8), st.randoms())
def test_key_order_does_not_change_bytes(value, rnd: random.Random):
    def shuffled(v):
        if isinstance(v, dict):
            items = list(v.items())
            rnd.shuffle(items)
            return {k: shuffled(x) for k, x in items}
        if isinstance(v, list):
            return [shuffled(x) for x in v]
        return v

    assert canonical_json(shuffled(value)) == canonical_json(value)


@given(
    st.dictionaries(
        st.text(alphabet=st.characters(max_codepoint=0xD7FF)),
        json_scalars.filter(lambda v: not isinstance(v, float)),
    )
)
def test_matches_python_sorted_compact_json_on_bmp_keys(value):
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected.encode("utf-8")


def test_no_whitespace_and_utf8():
    assert canonical_json({"b": [1, 2], "a": {"y": None, "x": True}, "名": "学信"}) == (
        '{"a":{"x":true,"y":null},"b":[1,2],"名":"学信"}'.encode()
    )


def test_rfc8785_example():
    # RFC 8785 section 3.2.2 input and its canonical output.
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


def test_rfc8785_key_sorting_uses_utf16_code_units():
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    out = canonical_json({k: i for i, k in enumerate(keys)}).decode()
    order = [json.loads("[" + part.split(":")[0] + "]")[0] for part in out[1:-1].split(",")]
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB33
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("bits", "text"),
    [  # RFC 8785 appendix B
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
        (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xC340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
        (0x44B52D02C7E14AF6, "1e+23"),
        (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
        (0x444B1AE4D6E2EF4E, "999999999999999700000"),
        (0x444B1AE4D6E2EF4F, "999999999999999900000"),
        (0x444B1AE4D6E2EF50, "1e+21"),
        (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
        (0x3EB0C6F7A0B5ED8D, "0.000001"),
        (0x41B3DE4355555553, "333333333.3333332"),
        (0x41B3DE4355555554, "333333333.33333325"),
        (0x41B3DE4355555555, "333333333.3333333"),
        (0x41B3DE4355555556, "333333333.3333334"),
        (0x41B3DE4355555557, "333333333.33333343"),
        (0xBECBF647612F3696, "-0.0000033333333333333333"),
        (0x43143FF3C1CB0959, "1424953923781206.2"),
    ],
)
def test_rfc8785_number_serialization(bits, text):
    value = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    assert canonical_json(value) == text.encode()


def test_integers_are_written_exactly():
    assert canonical_json(2**64 + 1) == b"18446744073709551617"
    assert canonical_json(-5) == b"-5"
    assert canonical_json(True) == b"true"


@pytest.mark.parametrize(
    "bad",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        {"a": float("nan")},
        {1: "int key"},
        {"s": b"bytes"},
        {"x": {1, 2}},
        "\ud800",
        {"\udfff": 1},
        object(),
    ],
)
def test_canonical_json_rejects_non_json(bad):
    with pytest.raises(InvalidInput):
        canonical_json(bad)


def test_salted_record_of_canonical_json():
    salt = new_salt()
    a = record_hash(salt, canonical_json({"name": "张三", "grade": "A"}))
    b = record_hash(salt, canonical_json({"grade": "A", "name": "张三"}))
    assert a == b
    assert a != record_hash(new_salt(), canonical_json({"name": "张三", "grade": "A"}))


@settings(max_examples=25)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=64, unique=True))
def test_arbitrary_leaf_values(leaves):
    tree = MerkleTree(leaves)
    assert tree.root == reference_root(leaves)
    for leaf, proof in zip(leaves, tree.proofs(), strict=True):
        assert verify_proof(leaf, proof, tree.root)


# The stdlib fast path of canonical_json must write exactly what the RFC 8785 emitter writes.
_plain_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(_plain_json)
def test_canonical_json_fast_path_matches_the_rfc_emitter(value: object) -> None:
    from ledger import canonical

    slow: list[str] = []
    try:
        canonical._emit(value, slow)
        expected: bytes | None = "".join(slow).encode("utf-8")
    except (UnicodeEncodeError, InvalidInput):
        expected = None
    if expected is None:
        with pytest.raises(InvalidInput):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected
