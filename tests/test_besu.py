"""The Besu QBFT generator: extraData against Besu's published vectors, and the files."""

from __future__ import annotations

import json
import stat
import tempfile
import tomllib
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.cli import main as eduledger
from ledger.consortium.definition import (
    UNSAFE_CATEGORIES,
    ConsortiumDefinition,
    Organisation,
    load_definition,
    parse_definition,
)
from ledger.errors import ConfigError, InvalidInput
from node_config.besu import (
    BESU_VERSION_NOTE,
    QBFT_MIX_HASH,
    NodeKey,
    QbftVote,
    build_genesis,
    comment_text,
    decode_qbft_extra_data,
    encode_qbft_extra_data,
    generate_besu_network,
    render_toml,
    toml_string,
    validator_address,
)

DEMO = Path(__file__).resolve().parents[1] / "node_config" / "demo.toml"

# --- vectors published by Besu ------------------------------------------------------------

# Besu documentation, "Configure QBFT consensus" > "Generate extra data":
# https://besu.hyperledger.org/private-networks/how-to/configure/consensus/qbft#generate-extra-data
# (repository hyperledger/besu-docs, docs/private-networks/how-to/configure/consensus/qbft.md,
# commit 110d7680c87c34864ca2a80df0f210e2bde934b7). Input of
# `besu rlp encode --from=toEncode.json --type=QBFT_EXTRA_DATA` and its output, verbatim.
# The page says the list is "in ascending order" but the example is not sorted; Besu encodes
# the list in the order given, hence sort=False to reproduce it.
DOCS_TO_ENCODE_JSON = """[
  "0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb",
  "0x06e23768a0f59cf365e18c2e0c89e151bcdedc70",
  "0xc5327f96ee02d7bcbc1bf1236b8c15148971e1de",
  "0xab5e7f4061c605820d3744227eed91ff8e2c8908"
]"""
DOCS_RLP_ENCODED = (
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854944592c8e45706"
    "cc08b8f44b11e43cba0cfc5892cb9406e23768a0f59cf365e18c2e0c89e151bcdedc7094c5327f96ee02d7bcbc1b"
    "f1236b8c15148971e1de94ab5e7f4061c605820d3744227eed91ff8e2c8908c080c0"
)

# Same page, "Genesis file", block header validator selection example: its extraData.
DOCS_GENESIS_EXTRA_DATA = (
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f8549464a702e6263b"
    "7297a96638cac6ae65e6541f4169943923390ad55e90c237593b3b0e401f3b08a0318594aefdb9a738c9f433e5b6"
    "b212a6d62f6370c2f69294c7eeb9a4e00ce683cf93039b212648e01c6c6b78c080c0"
)
DOCS_GENESIS_VALIDATORS = (
    "0x64a702e6263b7297a96638cac6ae65e6541f4169",
    "0x3923390ad55e90c237593b3b0e401f3b08a03185",
    "0xaefdb9a738c9f433e5b6b212a6d62f6370c2f692",
    "0xc7eeb9a4e00ce683cf93039b212648e01c6c6b78",
)

# Same page, contract validator selection example: no validators in extraData.
DOCS_CONTRACT_MODE_EXTRA_DATA = (
    "0xe5a00000000000000000000000000000000000000000000000000000000000000000c0c080c0"
)

# Besu's own test of the same command: hyperledger/besu,
# besu/src/test/java/org/hyperledger/besu/cli/subcommands/rlp/RLPSubCommandTest.java,
# canEncodeToQbftExtraData (commit 21dd0ac267242b0047649a867da72cbfc98eb07d).
BESU_CLI_TEST_INPUT = (
    '["be068f726a13c8d46c44be6ce9d275600e1735a4", "5ff6f4b66a46a2b2310a6f3a93aaddc0d9a1c193"]'
)
BESU_CLI_TEST_EXPECTED = (
    "0xf84fa00000000000000000000000000000000000000000000000000000000000000000ea94be068f726a13c8d"
    "46c44be6ce9d275600e1735a4945ff6f4b66a46a2b2310a6f3a93aaddc0d9a1c193c080c0"
)

# Besu's codec test, with a vote, a non-zero round and two seals: hyperledger/besu,
# consensus/qbft/src/test/java/org/hyperledger/besu/consensus/qbft/QbftExtraDataCodecTest.java,
# RAW_HEX_ENCODING_STRING (commit 0412fd797ece9828471214ddd11c80268753eeac).
BESU_CODEC_RAW_HEX = (
    "0xf8f0a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20ea940000000000000000"
    "000000000000000000000001940000000000000000000000000000000000000002d7940000000000000000"
    "00000000000000000000000181ff83fedcbaf886b841000000000000000000000000000000000000000000"
    "0000000000000000000001000000000000000000000000000000000000000000000000000000000000000a"
    "00b841000000000000000000000000000000000000000000000000000000000000000a0000000000000000"
    "00000000000000000000000000000000000000000000000100"
)


def test_docs_rlp_encode_example() -> None:
    validators = json.loads(DOCS_TO_ENCODE_JSON)
    assert encode_qbft_extra_data(validators, sort=False) == DOCS_RLP_ENCODED
    decoded = decode_qbft_extra_data(DOCS_RLP_ENCODED)
    assert decoded.validators == tuple(validators)
    assert decoded.vanity == bytes(32)
    assert decoded.vote is None and decoded.round == 0 and decoded.seals == ()


def test_docs_example_sorted_ascending() -> None:
    validators = json.loads(DOCS_TO_ENCODE_JSON)
    encoded = encode_qbft_extra_data(validators)  # sorted by default
    assert decode_qbft_extra_data(encoded).validators == tuple(sorted(validators))
    assert encoded == encode_qbft_extra_data(sorted(validators), sort=False)
    assert len(encoded) == len(DOCS_RLP_ENCODED) and encoded != DOCS_RLP_ENCODED


def test_docs_genesis_example() -> None:
    decoded = decode_qbft_extra_data(DOCS_GENESIS_EXTRA_DATA)
    assert decoded.validators == DOCS_GENESIS_VALIDATORS
    assert encode_qbft_extra_data(DOCS_GENESIS_VALIDATORS, sort=False) == DOCS_GENESIS_EXTRA_DATA


def test_docs_contract_mode_example_is_the_empty_validator_list() -> None:
    assert encode_qbft_extra_data([]) == DOCS_CONTRACT_MODE_EXTRA_DATA
    assert decode_qbft_extra_data(DOCS_CONTRACT_MODE_EXTRA_DATA).validators == ()


def test_besu_cli_test_vector() -> None:
    validators = json.loads(BESU_CLI_TEST_INPUT)  # no 0x prefix, as in Besu's test
    assert encode_qbft_extra_data(validators, sort=False) == BESU_CLI_TEST_EXPECTED
    as_bytes = [bytes.fromhex(v) for v in validators]
    assert encode_qbft_extra_data(as_bytes, sort=False) == BESU_CLI_TEST_EXPECTED


def test_besu_codec_vector_with_vote_round_and_seals() -> None:
    decoded = decode_qbft_extra_data(BESU_CODEC_RAW_HEX)
    assert decoded.vanity == bytes(range(1, 33))
    assert decoded.validators == ("0x" + "00" * 19 + "01", "0x" + "00" * 19 + "02")
    assert decoded.vote == QbftVote(recipient="0x" + "00" * 19 + "01", add=True)
    assert decoded.round == 0xFEDCBA
    # Seals are r (32 bytes) || s (32 bytes) || recovery id: (1, 10, 0) and (10, 1, 0).
    seal = lambda r, s: r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"\x00"  # noqa: E731
    assert decoded.seals == (seal(1, 10), seal(10, 1))


def test_decode_accepts_bytes_and_drop_votes() -> None:
    import rlp

    raw = rlp.encode([bytes(32), [], [b"\x01" * 20, b""], b"\x05", []])
    decoded = decode_qbft_extra_data(raw)
    assert decoded.vote == QbftVote(recipient="0x" + "01" * 20, add=False)
    assert decoded.round == 5


@pytest.mark.parametrize(
    "validators",
    [
        ["0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb"] * 2,  # duplicate
        ["0x4592c8e45706cc08b8f44b11e43cba0cfc5892"],  # 19 bytes
        ["0xzz92c8e45706cc08b8f44b11e43cba0cfc5892cb"],  # not hex
        ["0x4592C8e45706cc08b8f44b11e43cba0cfc5892cb"],  # mixed case, wrong EIP-55 checksum
        [b"\x01" * 21],
        [42],
    ],
)
def test_encode_rejects_bad_addresses(validators: list) -> None:
    with pytest.raises(InvalidInput):
        encode_qbft_extra_data(validators)


def test_encode_accepts_checksummed_and_upper_case() -> None:
    address = Account.from_key(b"\x01" * 32).address  # EIP-55 mixed case
    lower = encode_qbft_extra_data([address.lower()])
    assert encode_qbft_extra_data([address]) == lower
    assert encode_qbft_extra_data(["0x" + address[2:].upper()]) == lower


@pytest.mark.parametrize(
    "extra_data",
    [
        "0x",
        "0xzz",
        "0xc0",  # an empty list
        DOCS_RLP_ENCODED + "00",  # trailing byte
        # round encoded with a leading zero (Besu's incorrectlyEncodedRoundThrowsRlpException)
        "0x" + __import__("rlp").encode([bytes(32), [], [], b"\x00\xdc\xba", []]).hex(),
        "0x" + __import__("rlp").encode([bytes(31), [], [], b"", []]).hex(),  # short vanity
        "0x" + __import__("rlp").encode([bytes(32), [b"\x01"], [], b"", []]).hex(),
        "0x" + __import__("rlp").encode([bytes(32), [], [b"\x01" * 20, b"\x01"], b"", []]).hex(),
    ],
)
def test_decode_rejects_malformed_extra_data(extra_data: str) -> None:
    with pytest.raises(InvalidInput):
        decode_qbft_extra_data(extra_data)


# --- node keys ----------------------------------------------------------------------------


def test_node_key_of_private_key_one() -> None:
    # Private key 1: the public key is the secp256k1 generator point, whose address is
    # well known.
    key = NodeKey.from_private_key((1).to_bytes(32, "big"))
    assert key.public_key.hex() == (
        "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
    )
    assert key.address == "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
    assert validator_address(b"\x04" + key.public_key) == key.address
    assert key.enode("10.0.0.1", 30303) == f"enode://{key.public_key.hex()}@10.0.0.1:30303"


def test_node_key_address_matches_eth_account() -> None:
    key = NodeKey.generate()
    assert key.address == Account.from_key(key.private_key).address.lower()


def test_seeded_node_keys_are_deterministic() -> None:
    assert NodeKey.from_seed("s", "bureau") == NodeKey.from_seed(b"s", "bureau")
    assert NodeKey.from_seed("s", "bureau") != NodeKey.from_seed("s", "school-a")
    assert NodeKey.from_seed("s", "bureau") != NodeKey.from_seed("t", "bureau")


def test_validator_address_rejects_wrong_length() -> None:
    with pytest.raises(InvalidInput):
        validator_address(b"\x02" * 33)


# --- the generated network ----------------------------------------------------------------

ACCOUNTS = {org: Account.from_key(bytes([i + 1]) * 32).address
            for i, org in enumerate(["bureau", "school-a", "school-b", "partner", "auditor"])}
VALIDATOR_IDS = ["bureau", "school-a", "school-b", "partner"]


@pytest.fixture
def network(tmp_path: Path):
    return generate_besu_network(load_definition(DEMO), tmp_path / "net", chain_id=4478,
                                 account_addresses=ACCOUNTS, seed="test")


def test_genesis(network) -> None:
    genesis = json.loads(network.genesis_file.read_text())
    config = genesis["config"]
    assert config["chainId"] == 4478
    assert config["berlinBlock"] == 0 and config["londonBlock"] == 0
    assert config["shanghaiTime"] == 0 and "cancunTime" not in config
    assert config["zeroBaseFee"] is True
    assert config["qbft"] == {"blockperiodseconds": 2, "epochlength": 30000,
                              "requesttimeoutseconds": 4}
    assert genesis["difficulty"] == "0x1"
    assert genesis["mixHash"] == QBFT_MIX_HASH
    assert int(genesis["gasLimit"], 16) > 30_000_000
    assert genesis["extraData"] == network.extra_data

    validators = decode_qbft_extra_data(genesis["extraData"]).validators
    assert list(validators) == sorted(validators)
    assert set(validators) == {node.address for node in network.nodes}
    assert validators == network.validators

    assert genesis["alloc"] == {
        address[2:].lower(): {"balance": hex(10**24)} for address in ACCOUNTS.values()
    }


def test_validator_addresses_come_from_the_key_files(network) -> None:
    from_keys = set()
    for org_id in VALIDATOR_IDS:
        directory = network.directory / org_id
        private = bytes.fromhex((directory / "key").read_text().removeprefix("0x"))
        public = (directory / "key.pub").read_text().removeprefix("0x")
        key = NodeKey.from_private_key(private)
        assert public == key.public_key.hex() and len(public) == 128
        from_keys.add(key.address)
    assert tuple(sorted(from_keys)) == decode_qbft_extra_data(network.extra_data).validators


def test_node_directories(network) -> None:
    assert sorted(p.name for p in network.directory.iterdir()) == sorted(
        VALIDATOR_IDS + ["genesis.json"]
    )  # no directory for the auditor: it runs no validator
    genesis_text = network.genesis_file.read_text()
    for org_id in VALIDATOR_IDS:
        directory = network.directory / org_id
        assert sorted(p.name for p in directory.iterdir()) == [
            "config.toml", "genesis.json", "key", "key.pub", "permissions_config.toml",
            "static-nodes.json",
        ]
        assert stat.S_IMODE((directory / "key").stat().st_mode) == 0o600
        assert (directory / "genesis.json").read_text() == genesis_text


def test_config_toml(network) -> None:
    definition = load_definition(DEMO)
    for node in network.nodes:
        org = definition.organisation(node.org_id)
        config = tomllib.loads((node.directory / "config.toml").read_text(encoding="utf-8"))
        assert config["p2p-port"] == org.p2p_port == node.p2p_port
        assert config["rpc-http-port"] == org.rpc_port == node.rpc_port
        assert config["p2p-host"] == "127.0.0.1"
        assert config["rpc-http-enabled"] is True
        assert {"ETH", "NET", "QBFT", "PERM"} <= set(config["rpc-http-api"])
        assert "localhost" in config["host-allowlist"]
        assert config["min-gas-price"] == 0
        # archive nodes: state at old blocks is read when verifying
        assert (config["data-storage-format"], config["sync-mode"]) == ("FOREST", "FULL")
        assert config["permissions-nodes-config-file-enabled"] is True
        assert config["permissions-accounts-config-file-enabled"] is True
        assert config["discovery-enabled"] is False
        # Relative paths resolve inside the node directory.
        for option in ("genesis-file", "node-private-key-file", "static-nodes-file",
                       "permissions-nodes-config-file", "permissions-accounts-config-file"):
            assert (node.directory / config[option]).is_file(), option
        assert config["data-path"] == "data"
        assert node.rpc_url == f"http://127.0.0.1:{org.rpc_port}"


def test_static_nodes_and_permissions(network) -> None:
    expected_enodes = []
    for node in network.nodes:
        public = (node.directory / "key.pub").read_text().removeprefix("0x")
        expected_enodes.append(f"enode://{public}@{node.host}:{node.p2p_port}")
    assert [node.enode for node in network.nodes] == expected_enodes
    for node in network.nodes:
        static = json.loads((node.directory / "static-nodes.json").read_text())
        assert static == expected_enodes
        permissions = tomllib.loads((node.directory / "permissions_config.toml").read_text())
        assert permissions["nodes-allowlist"] == expected_enodes
        assert permissions["accounts-allowlist"] == [a.lower() for a in ACCOUNTS.values()]


def test_without_accounts_the_allowlist_and_alloc_are_empty(tmp_path: Path) -> None:
    network = generate_besu_network(load_definition(DEMO), tmp_path, seed="x")
    genesis = json.loads(network.genesis_file.read_text())
    assert genesis["alloc"] == {}
    permissions = tomllib.loads((tmp_path / "bureau" / "permissions_config.toml").read_text())
    assert permissions["accounts-allowlist"] == []
    assert len(permissions["nodes-allowlist"]) == 4


def test_seeded_generation_is_reproducible(tmp_path: Path) -> None:
    definition = load_definition(DEMO)
    a = generate_besu_network(definition, tmp_path / "a", seed="same")
    b = generate_besu_network(definition, tmp_path / "b", seed="same")
    c = generate_besu_network(definition, tmp_path / "c")
    d = generate_besu_network(definition, tmp_path / "d")
    assert a.genesis_file.read_text() == b.genesis_file.read_text()
    assert a.validators != c.validators != d.validators


def test_parameters_reach_the_genesis(tmp_path: Path) -> None:
    network = generate_besu_network(load_definition(DEMO), tmp_path, chain_id=777,
                                    block_period_seconds=5, epoch_length=100,
                                    evm_fork="cancun", seed="p")
    config = json.loads(network.genesis_file.read_text())["config"]
    assert config["chainId"] == 777
    assert config["qbft"]["blockperiodseconds"] == 5 and config["qbft"]["epochlength"] == 100
    assert config["cancunTime"] == 0


def test_build_genesis_london() -> None:
    genesis = build_genesis(encode_qbft_extra_data([]), evm_fork="london")
    assert "shanghaiTime" not in genesis["config"] and genesis["config"]["londonBlock"] == 0


def test_existing_network_is_not_overwritten(tmp_path: Path) -> None:
    definition = load_definition(DEMO)
    first = generate_besu_network(definition, tmp_path, seed="one")
    (tmp_path / "bureau" / "data").mkdir()
    with pytest.raises(ConfigError, match="already holds a generated network"):
        generate_besu_network(definition, tmp_path, seed="two")
    assert decode_qbft_extra_data(
        json.loads(first.genesis_file.read_text())["extraData"]
    ).validators == first.validators

    second = generate_besu_network(definition, tmp_path, seed="two", overwrite=True)
    assert second.validators != first.validators
    assert not (tmp_path / "bureau" / "data").exists()  # old chain data would not fit
    assert stat.S_IMODE((tmp_path / "bureau" / "key").stat().st_mode) == 0o600


def test_default_ports_follow_the_validators(tmp_path: Path) -> None:
    text = """
governors = ["bureau"]
threshold = 1
[[organisations]]
id = "bureau"
name = "局"
role = "bureau"
runs_validator = true
[[organisations]]
id = "school-a"
name = "校"
role = "school"
runs_validator = true
host = "10.1.2.3"
"""
    network = generate_besu_network(parse_definition(text, "c.toml"), tmp_path, seed="p")
    assert [(n.host, n.p2p_port, n.rpc_port) for n in network.nodes] == [
        ("127.0.0.1", 30303, 8545), ("10.1.2.3", 30304, 8546)
    ]
    assert network.nodes[1].enode.endswith("@10.1.2.3:30304")


# --- generator errors ---------------------------------------------------------------------

BASE = """
governors = ["bureau"]
threshold = 1
[[organisations]]
id = "bureau"
name = "局"
role = "bureau"
runs_validator = {validator}
{extra}
[[organisations]]
id = "school-a"
name = "校"
role = "school"
runs_validator = {validator}
"""


def generator_error(tmp_path: Path, text: str, **kwargs) -> str:
    definition = parse_definition(text, source="c.toml")
    with pytest.raises(ConfigError) as info:
        generate_besu_network(definition, tmp_path, seed="e", **kwargs)
    assert "\n" not in info.value.message
    assert not (tmp_path / "genesis.json").exists()  # nothing written on error
    return info.value.message


def test_no_validators(tmp_path: Path) -> None:
    text = BASE.format(validator="false", extra="")
    assert generator_error(tmp_path, text) == (
        "c.toml: no organisation has runs_validator = true "
        "(a Besu network needs at least one validator)"
    )


def test_default_port_collides_with_explicit_port(tmp_path: Path) -> None:
    text = BASE.format(validator="true", extra="rpc_port = 30304")
    assert generator_error(tmp_path, text).startswith(
        "c.toml: nodes of 'bureau' and 'school-a' would both use port 30304 on 127.0.0.1"
    )


def test_account_for_unknown_organisation(tmp_path: Path) -> None:
    text = BASE.format(validator="true", extra="")
    assert generator_error(tmp_path, text, account_addresses={"nobody": ACCOUNTS["bureau"]}) == (
        "c.toml: account address given for unknown organisation 'nobody'"
    )


def test_invalid_account_address(tmp_path: Path) -> None:
    text = BASE.format(validator="true", extra="")
    assert generator_error(tmp_path, text, account_addresses={"bureau": "0x1234"}) == (
        "c.toml: organisation 'bureau' has invalid account address '0x1234'"
    )


def test_shared_account_address(tmp_path: Path) -> None:
    text = BASE.format(validator="true", extra="")
    address = ACCOUNTS["bureau"]
    message = generator_error(tmp_path, text,
                              account_addresses={"bureau": address, "school-a": address})
    assert message.startswith("c.toml: organisations 'bureau' and 'school-a' have the same")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"chain_id": 0}, "chain_id must be a positive integer"),
        ({"block_period_seconds": -1}, "block_period_seconds must be a positive integer"),
        ({"evm_fork": "osaka"}, "unknown EVM fork 'osaka'"),
    ],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    text = BASE.format(validator="true", extra="")
    assert fragment in generator_error(tmp_path, text, **kwargs)


# --- command line -------------------------------------------------------------------------


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "net"
    code = eduledger(["network", "besu", "--config", str(DEMO), "--out", str(out),
                     "--account", f"bureau={ACCOUNTS['bureau']}"])
    assert code == 0
    assert "4 validators" in capsys.readouterr().out
    permissions = tomllib.loads((out / "partner" / "permissions_config.toml").read_text())
    assert permissions["accounts-allowlist"] == [ACCOUNTS["bureau"].lower()]

    assert eduledger(["network", "besu", "--config", str(DEMO), "--out", str(out)]) == 2
    assert "already holds a generated network" in capsys.readouterr().err
    assert eduledger(["network", "besu", "--config", str(DEMO), "--out", str(tmp_path / "x"),
                     "--account", "bureau"]) == 2
    assert "--account expects ORG=ADDRESS" in capsys.readouterr().err
    # A usage error is one line too, not argparse's usage block.
    with pytest.raises(SystemExit) as exited:
        eduledger(["network", "besu", "--config", str(DEMO), "--out", str(tmp_path / "y"), "--chain-id", "x"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == ("eduledger: argument --chain-id: invalid int value: 'x' "
                                       "(see eduledger network besu --help)\n")


def test_existing_node_key_alone_blocks_generation(tmp_path: Path) -> None:
    (tmp_path / "school-b").mkdir()
    (tmp_path / "school-b" / "key").write_text("0x" + "11" * 32)
    with pytest.raises(ConfigError, match="already holds a generated network"):
        generate_besu_network(load_definition(DEMO), tmp_path, seed="k")
    assert (tmp_path / "school-b" / "key").read_text() == "0x" + "11" * 32


def test_unwritable_output_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot write the network"):
        generate_besu_network(load_definition(DEMO), blocker / "net", seed="w")


# --- what reaches the files is validated or escaped (issue 18 item 11) ---------------------

CONFIG_KEYS = [
    "identity", "data-path", "genesis-file", "node-private-key-file", "min-gas-price",
    "data-storage-format", "sync-mode", "p2p-host", "p2p-port", "discovery-enabled",
    "static-nodes-file", "rpc-http-enabled", "rpc-http-host", "rpc-http-port", "rpc-http-api",
    "host-allowlist", "permissions-nodes-config-file-enabled", "permissions-nodes-config-file",
    "permissions-accounts-config-file-enabled", "permissions-accounts-config-file",
]
INJECTION = 'x\nrpc-ws-enabled = true\nrpc-ws-host = "0.0.0.0"'
HOSTILE_NAMES = [
    INJECTION,
    # ... and one that leaves valid TOML: the rest of the header line becomes a comment, so
    # before the fix Besu would have read an open WebSocket RPC from this file.
    INJECTION + "\n#",
    "x\r\nrpc-ws-enabled = true",
    "x\rrpc-ws-enabled = true",
    "x\u2028rpc-ws-enabled = true",
    "x\u2029y",
    "x\x85y\x0by\x0cy\x00y\x7fy",
    "x\u202egnp.live",  # right-to-left override: shows as "x" + "evil.png" reversed
    'quote " and """ and \'\'\'',
    "back\\slash \\n \\u0041",
    "# hash",
    "[section]",
    "x\n[rpc]\nenabled = true",
    "x\n\n[[organisations]]\nid = \"evil\"",
    "示范区第一中学 𠀀",
]


def hostile_definition(name: str, **org_fields) -> ConsortiumDefinition:
    """A definition built in code, not parsed: the generator must be safe on its own."""
    bureau = Organisation(id="bureau", name=name, role="bureau", runs_validator=True,
                          **org_fields)
    school = Organisation(id="school-a", name="校", role="school", runs_validator=True)
    return ConsortiumDefinition(organisations=(bureau, school), governors=("bureau",),
                                threshold=1, source="code")


def assert_network_files_are_exact(out: Path, nodes: int = 2) -> None:
    """Every file parses, holds exactly the keys meant, and no unsafe character."""
    json.loads((out / "genesis.json").read_text(encoding="utf-8"))
    for directory in sorted(p for p in out.iterdir() if p.is_dir()):
        config_text = (directory / "config.toml").read_text(encoding="utf-8")
        config = tomllib.loads(config_text)
        expected = list(CONFIG_KEYS)
        if ":" in config["p2p-host"]:
            expected.insert(expected.index("p2p-port"), "p2p-interface")
        assert list(config) == expected
        assert config["identity"] == directory.name
        # The name stays on the header's first line, whatever it holds: comment lines, a blank
        # line, then options only.
        lines = config_text.split("\n")
        blank = lines.index("")
        assert lines[0].startswith("# Besu node of ")
        assert lines[0].endswith(f"({directory.name}), generated by eduledger.")
        assert lines[1] == "# Start it from this directory: besu --config-file=config.toml"
        assert all(line.startswith("# ") for line in lines[:blank])
        assert not any(line.startswith("#") for line in lines[blank:])
        permissions_text = (directory / "permissions_config.toml").read_text("utf-8")
        assert [line for line in permissions_text.split("\n") if line.startswith("#")] == [
            "# Local permissioning: only these nodes may connect, only these accounts transact."]
        permissions = tomllib.loads(permissions_text)
        assert list(permissions) == ["nodes-allowlist", "accounts-allowlist"]
        assert len(permissions["nodes-allowlist"]) == nodes
        static = json.loads((directory / "static-nodes.json").read_text(encoding="utf-8"))
        assert static == permissions["nodes-allowlist"]
        for path in directory.iterdir():
            text = path.read_text(encoding="utf-8")
            unsafe = [ch for ch in text if ch != "\n" and unicodedata.category(ch) in
                      UNSAFE_CATEGORIES]
            assert unsafe == [], (path.name, unsafe)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_an_organisation_name_cannot_inject_options(tmp_path: Path, name: str) -> None:
    generate_besu_network(hostile_definition(name), tmp_path, seed="n")
    assert_network_files_are_exact(tmp_path)
    config = tomllib.loads((tmp_path / "bureau" / "config.toml").read_text(encoding="utf-8"))
    assert "rpc-ws-enabled" not in config and "rpc-ws-host" not in config
    assert "rpc" not in config and "organisations" not in config


def test_the_name_is_shown_escaped_in_the_header(tmp_path: Path) -> None:
    generate_besu_network(hostile_definition(INJECTION), tmp_path, seed="n")
    first = (tmp_path / "bureau" / "config.toml").read_text(encoding="utf-8").split("\n")[0]
    assert first == ('# Besu node of x\\u000Arpc-ws-enabled = true\\u000Arpc-ws-host = "0.0.0.0" '
                     "(bureau), generated by eduledger.")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(min_size=1, max_size=60))
def test_any_name_gives_files_with_exactly_the_options_meant(name: str) -> None:
    with tempfile.TemporaryDirectory() as out:
        generate_besu_network(hostile_definition(name), out, seed="p")
        assert_network_files_are_exact(Path(out))


@settings(max_examples=300)
@given(value=st.text())
def test_toml_string_round_trips_through_tomllib(value: str) -> None:
    written = toml_string(value)
    assert tomllib.loads(f"k = {written}\n") == {"k": value}
    assert "\n" not in written and "\r" not in written
    assert not any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in written)


def test_toml_string_writes_characters_beyond_the_bmp_as_they_are() -> None:
    # json.dumps gives "\ud840\udc00" (a surrogate pair), which TOML forbids.
    assert toml_string("𠀀") == '"𠀀"'
    assert tomllib.loads(f"k = {toml_string('𠀀')}") == {"k": "𠀀"}


def test_comment_text_keeps_one_line() -> None:
    assert comment_text("a\nb\r\u2028c\u202ed\te") == "a\\u000Ab\\u000D\\u2028c\\u202Ed\\u0009e"
    assert comment_text("示范区 # [x] \"q\" \\") == "示范区 # [x] \"q\" \\"


def test_render_toml_refuses_a_key_that_is_not_bare() -> None:
    with pytest.raises(ValueError, match="not a bare TOML key"):
        render_toml([], [("rpc-ws-enabled = true\nx", 1)])


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"id": "../../etc"}, "organisation id '../../etc' is invalid"),
        ({"id": "bureau\nx"}, "organisation id 'bureau\\nx' is invalid"),
        ({"host": '127.0.0.1"\nrpc-ws-enabled = true'}, "which is not an IP address"),
        ({"host": "node.example"}, "has host 'node.example', which is not an IP address"),
        ({"host": "fe80::1%eth0"}, "an IPv6 address with a zone"),
        ({"p2p_port": 0}, "has p2p_port 0 out of range"),
        ({"rpc_port": True}, "has rpc_port True out of range"),
    ],
)
def test_generator_validates_a_definition_built_in_code(tmp_path: Path, fields: dict,
                                                        fragment: str) -> None:
    org_id = fields.pop("id", "bureau")
    bureau = Organisation(id=org_id, name="局", role="bureau", runs_validator=True, **fields)
    definition = ConsortiumDefinition(organisations=(bureau,), governors=(org_id,),
                                      threshold=1, source="code")
    with pytest.raises(ConfigError) as info:
        generate_besu_network(definition, tmp_path / "net", seed="v")
    assert fragment in info.value.message and "\n" not in info.value.message
    assert not (tmp_path / "net").exists() and not (tmp_path / "etc").exists()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"gas_limit": -1}, "gas_limit must be a positive integer"),
        ({"account_balance_wei": -5}, "account_balance_wei must be a non-negative integer"),
        ({"account_balance_wei": True}, "account_balance_wei must be a non-negative integer"),
    ],
)
def test_numbers_written_to_the_genesis_are_checked(tmp_path: Path, kwargs: dict,
                                                    fragment: str) -> None:
    text = BASE.format(validator="true", extra="")
    assert fragment in generator_error(tmp_path, text, **kwargs)


# --- IPv6 hosts and the Besu version (issue 18 item 12) -----------------------------------

IPV6_TEXT = """
governors = ["bureau"]
threshold = 1
[[organisations]]
id = "bureau"
name = "局"
role = "bureau"
runs_validator = true
host = "FD00:0::1"
[[organisations]]
id = "school-a"
name = "校"
role = "school"
runs_validator = true
host = "127.0.0.1"
"""


def test_ipv6_hosts_give_enodes_besu_parses(tmp_path: Path) -> None:
    network = generate_besu_network(parse_definition(IPV6_TEXT, "c.toml"), tmp_path, seed="6")
    bureau, school = network.nodes
    public = (tmp_path / "bureau" / "key.pub").read_text().removeprefix("0x")
    # Besu parses enodes with java.net.URI, which finds a host in an IPv6 URL only in brackets.
    assert bureau.enode == f"enode://{public}@[fd00::1]:30303"
    assert bureau.host == "fd00::1" and bureau.p2p_address == "[fd00::1]:30303"
    parsed = urlsplit(bureau.enode)
    assert (parsed.hostname, parsed.port, parsed.username) == ("fd00::1", 30303, public)
    assert school.enode.endswith("@127.0.0.1:30304") and school.p2p_address == "127.0.0.1:30304"
    assert_network_files_are_exact(tmp_path)

    for node in network.nodes:
        static = json.loads((node.directory / "static-nodes.json").read_text())
        permissions = tomllib.loads((node.directory / "permissions_config.toml").read_text())
        assert static == permissions["nodes-allowlist"] == [bureau.enode, school.enode]
    config = tomllib.loads((tmp_path / "bureau" / "config.toml").read_text())
    # p2p-host is a bare address (Besu checks it with InetAddresses.isInetAddress); the node
    # listens on IPv6 too, not on Besu's default 0.0.0.0.
    assert (config["p2p-host"], config["p2p-interface"]) == ("fd00::1", "::")
    ipv4 = tomllib.loads((tmp_path / "school-a" / "config.toml").read_text())
    assert ipv4["p2p-host"] == "127.0.0.1" and "p2p-interface" not in ipv4


def test_an_unbracketed_ipv6_enode_has_no_port() -> None:
    # What the generator wrote before: a URL parser cannot tell the address from the port.
    with pytest.raises(ValueError):
        urlsplit("enode://" + "ab" * 64 + "@fd00::1:30303").port  # noqa: B018


def test_node_key_enode_brackets_ipv6() -> None:
    key = NodeKey.from_private_key((1).to_bytes(32, "big"))
    assert key.enode("fd00::1", 30303).endswith("@[fd00::1]:30303")
    assert key.enode("FD00:0::1", 30303).endswith("@[fd00::1]:30303")
    assert key.enode("10.0.0.1", 30303).endswith("@10.0.0.1:30303")
    for host in ("node.example", "[fd00::1]", "fe80::1%eth0"):
        with pytest.raises(InvalidInput):
            key.enode(host, 30303)
    with pytest.raises(InvalidInput):
        key.enode("10.0.0.1", 0)


def test_ipv4_config_has_exactly_the_options_it_had(network) -> None:
    for node in network.nodes:
        config = tomllib.loads((node.directory / "config.toml").read_text(encoding="utf-8"))
        assert list(config) == CONFIG_KEYS


def test_cli_prints_ipv6_p2p_addresses_in_brackets(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(IPV6_TEXT, encoding="utf-8")
    assert eduledger(["network", "besu", "--config", str(config), "--out", str(tmp_path / "n")]) == 0
    assert "p2p [fd00::1]:30303" in capsys.readouterr().out


def test_config_toml_says_which_besu_versions_run_it(network) -> None:
    header = (network.directory / "bureau" / "config.toml").read_text(encoding="utf-8")
    header = " ".join(line.removeprefix("# ") for line in header.split("\n") if line.startswith("#"))
    assert BESU_VERSION_NOTE in header
    assert "This network's genesis enables Shanghai." in header
    for fact in ("24.5.2 or later", "not 26.1.x", "fixed in 26.2.0"):
        assert fact in BESU_VERSION_NOTE


def test_readme_says_which_besu_versions_run_the_network() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Running on Hyperledger Besu"):]
    section = " ".join(section[:section.index("\n## ")].split())
    assert "Run Besu 24.5.2 or later, but not 26.1.x" in section
    assert "fixed in 26.2.0" in section
    assert "24.1" not in section


def test_cli_refuses_a_definition_whose_name_holds_a_line_break(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(BASE.format(validator="true", extra="").replace(
        'name = "局"', 'name = "x\\nrpc-ws-enabled = true\\nrpc-ws-host = \\"0.0.0.0\\"\\n#"'),
        encoding="utf-8")
    assert eduledger(["network", "besu", "--config", str(config), "--out", str(tmp_path / "n")]) == 2
    assert capsys.readouterr().err == (
        f"eduledger: {config}: organisation 'bureau' has a 'name' holding a line break (U+000A); "
        "a name is one line of visible text\n")
    assert not (tmp_path / "n").exists()
