"""Setting up a consortium on a chain: the organisations' keys, the contracts, the members.

``deploy_consortium`` deploys the Consortium, AnchorRegistry and IdentityRegistry
contracts, admits each organisation through governance (proposals approved by the
governors up to the threshold) and registers each organisation's Ed25519
credential-signing key. The node's ``init_network`` (ledger.node.setup) runs it once per
data directory.
"""

from __future__ import annotations

from eth_account import Account

from ledger.chain import ChainAPI
from ledger.consortium.definition import ConsortiumDefinition
from ledger.consortium.deployment import Deployment, MemberRecord
from ledger.contracts.bindings import (
    AnchorRegistryContract,
    ConsortiumContract,
    ProposalAction,
    Role,
)
from ledger.contracts.identity import IdentityRegistryContract
from ledger.errors import ConfigError, Conflict
from ledger.keys import (
    OrganisationKeys,
    create_keystore,
    keystore_path,
    load_keystore,
)
from ledger.settings import Settings

ETHER = 10**18
GENESIS_BALANCE = 10**9 * ETHER
RPC_FUNDING = 1_000 * ETHER


def organisation_keys(settings: Settings, definition: ConsortiumDefinition) -> dict[str, OrganisationKeys]:
    """Each organisation's keys: loaded from its keystore, or created there."""
    passphrase = settings.keystore_secret()
    keys = {}
    for org in definition.organisations:
        if keystore_path(settings.keystore_dir, org.id).exists():
            keys[org.id] = load_keystore(settings.keystore_dir, org.id, passphrase)
        else:
            keys[org.id] = create_keystore(settings.keystore_dir, org.id, passphrase,
                                           scrypt_n=settings.keystore_scrypt_n)
    return keys


def fund_organisations(client: ChainAPI, settings: Settings, keys: dict[str, OrganisationKeys]) -> None:
    """On an external node, fund the organisations from EDULEDGER_FUNDER_KEY if given."""
    if settings.funder_key is None or not settings.funder_key.get_secret_value():
        return
    try:
        funder = Account.from_key(settings.funder_key.get_secret_value())
    except Exception:  # noqa: BLE001 - never echo key material
        raise ConfigError("EDULEDGER_FUNDER_KEY is not a valid private key") from None
    for k in keys.values():
        if client.balance(k.address) < RPC_FUNDING // 2:
            client.transfer(funder, k.address, RPC_FUNDING)


def deploy_consortium(client: ChainAPI, definition: ConsortiumDefinition,
                      keys: dict[str, OrganisationKeys]) -> Deployment:
    """Deploy the contracts, admit every organisation through governance and register its
    credential-signing key; the deployment record to save."""
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
    identity = IdentityRegistryContract.deploy(client, bureau_signer, consortium)
    organisations = {
        org.id: MemberRecord(member_id=member_ids[org.id], name=org.name, name_en=org.name_en, role=org.role,
                             account=keys[org.id].address, signing_key=keys[org.id].ed25519_public_hex)
        for org in definition.organisations
    }
    return Deployment(chain_id=client.chain_id, consortium=consortium.address,
                      anchor_registry=registry.address, deployed_block=start_block,
                      organisations=organisations, identity_registry=identity.address)


