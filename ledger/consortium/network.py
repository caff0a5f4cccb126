"""Setting up a consortium network: keys, contracts, members, API keys.

`init_network` runs once per data directory. It creates every organisation's keystore,
deploys the Consortium and AnchorRegistry contracts, admits each organisation through
governance (proposals approved by the governors up to the threshold), registers each
organisation's Ed25519 credential-signing key and writes the deployment record last: a
directory without `network.json` was never initialised, whatever else it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account

from ledger.consortium.apikeys import issue_api_keys
from ledger.contracts.bindings import (
    AnchorRegistryContract,
    ConsortiumContract,
    ProposalAction,
    Role,
)
from ledger.errors import ConfigError, Conflict
from ledger.keys import (
    DEFAULT_SCRYPT_N,
    OrganisationKeys,
    create_keystore,
    keystore_path,
    load_keystore,
)
from ledger.node import DEPLOYMENT_FILE, Deployment, Node
from ledger.settings import Settings, env, keystore_passphrase
from ledger.consortium.definition import ConsortiumDefinition, load_definition

ETHER = 10**18
GENESIS_BALANCE = 10**9 * ETHER
RPC_FUNDING = 1_000 * ETHER

OpenNode = Callable[..., Node]


def organisation_keys(settings: Settings, definition: ConsortiumDefinition) -> dict[str, OrganisationKeys]:
    """Each organisation's keys: loaded from its keystore, or created there."""
    passphrase = keystore_passphrase()
    keys = {}
    for org in definition.organisations:
        if keystore_path(settings.keystore_dir, org.id).exists():
            keys[org.id] = load_keystore(settings.keystore_dir, org.id, passphrase)
        else:
            keys[org.id] = create_keystore(settings.keystore_dir, org.id, passphrase,
                                           scrypt_n=_scrypt_n())
    return keys


def _scrypt_n() -> int:
    """The keystore cost; lowering it (EDULEDGER_KEYSTORE_SCRYPT_N) is for tests only."""
    raw = env("KEYSTORE_SCRYPT_N")
    if not raw:
        return DEFAULT_SCRYPT_N
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"EDULEDGER_KEYSTORE_SCRYPT_N must be a power of two, not {raw!r}") from None


def _fund_from_env(node: Node, keys: dict[str, OrganisationKeys]) -> None:
    """On an external node, fund the organisations from EDULEDGER_FUNDER_KEY if given."""
    funder_key = env("FUNDER_KEY")
    if not funder_key:
        return
    try:
        funder = Account.from_key(funder_key)
    except Exception:  # noqa: BLE001 - never echo key material
        raise ConfigError("EDULEDGER_FUNDER_KEY is not a valid private key") from None
    for k in keys.values():
        if node.client.w3.eth.get_balance(k.address) < RPC_FUNDING // 2:  # type: ignore[arg-type]
            node.client.transfer(funder, k.address, RPC_FUNDING)


def init_network(settings: Settings, config: Path, *, open_node: OpenNode = Node) -> Node:
    definition = load_definition(config)
    data_dir = settings.data_dir
    if (data_dir / DEPLOYMENT_FILE).exists():
        raise Conflict(f"{data_dir} already holds a network (its {DEPLOYMENT_FILE} exists)",
                       code="already_initialised")
    if not settings.rpc_url and settings.chain_dir.exists() and any(settings.chain_dir.iterdir()):
        raise Conflict(f"{settings.chain_dir} holds a chain but no deployment record: an earlier "
                       "initialisation was interrupted; remove the directory and run again",
                       code="partial_initialisation")
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = organisation_keys(settings, definition)
    node = open_node(settings, alloc={k.address: GENESIS_BALANCE for k in keys.values()})
    try:
        _fund_from_env(node, keys)
        deployment = _deploy(node, definition, keys)
        issue_api_keys(settings, definition)
        deployment.save(data_dir)
    except BaseException:
        node.close()
        raise
    return node


def _deploy(node: Node, definition: ConsortiumDefinition,
            keys: dict[str, OrganisationKeys]) -> Deployment:
    client = node.client
    bureau = next(org for org in definition.organisations if org.role == "bureau")
    bureau_signer = keys[bureau.id].account
    start_block = client.block_number()
    consortium = ConsortiumContract.deploy(
        client, bureau_signer, bureau.name,
        [keys[g].address for g in definition.governors], definition.threshold)
    member_ids = {bureau.id: 1}
    governors = [keys[g].account for g in definition.governors]
    for org in definition.organisations:
        if org.id == bureau.id:
            continue
        outcome = consortium.propose(governors[0], ProposalAction.ADMIT, name=org.name,
                                     role=Role[org.role.upper()], account=keys[org.id].address)
        for governor in governors[1:]:
            if outcome.executed:
                break
            outcome = consortium.approve(governor, outcome.proposal_id)
        if not outcome.executed or outcome.member_id is None:
            raise Conflict(f"admitting {org.id} did not reach the approval threshold",
                           code="threshold_not_reached")
        member_ids[org.id] = outcome.member_id
    for org in definition.organisations:
        consortium.add_signing_key(keys[org.id].account, keys[org.id].ed25519_public_bytes)
    registry = AnchorRegistryContract.deploy(client, bureau_signer, consortium)
    organisations: dict[str, dict[str, Any]] = {
        org.id: {"member_id": member_ids[org.id], "name": org.name, "role": org.role,
                 "account": keys[org.id].address,
                 "signing_key": keys[org.id].ed25519_public_hex}
        for org in definition.organisations
    }
    return Deployment(chain_id=client.chain_id, consortium=consortium.address,
                      anchor_registry=registry.address, deployed_block=start_block,
                      organisations=organisations)


def ensure_network(settings: Settings, config: Path, *, open_node: OpenNode = Node) -> Node:
    """Open the node, initialising the network first if the data directory is empty."""
    if (settings.data_dir / DEPLOYMENT_FILE).exists():
        return open_node(settings)
    return init_network(settings, config, open_node=open_node)


def signer_loader(settings: Settings) -> Callable[[str], Any]:
    """org id → unlocked Ethereum account (keystores are cached once unlocked)."""
    passphrase = keystore_passphrase()

    def signer_for(org_id: str) -> Any:
        return load_keystore(settings.keystore_dir, org_id, passphrase).account

    return signer_for
