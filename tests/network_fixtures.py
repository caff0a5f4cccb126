"""A small deployed network on any chain: a bureau, two schools, a partner, an auditor."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from ledger.contracts.bindings import (
    AnchorRegistryContract,
    ConsortiumContract,
    ProposalAction,
    Role,
)
from tests.chain_env import ChainEnv


@dataclass
class Network:
    env: ChainEnv
    consortium: ConsortiumContract
    registry: AnchorRegistryContract
    accounts: dict[str, LocalAccount]
    member_ids: dict[str, int]
    start_block: int

    def account_for(self, org_id: str) -> LocalAccount:  # an AccountSource, for anchoring
        return self.accounts[org_id]

    def admit(self, org_id: str, role: Role) -> int:
        """Admit a new member `org_id` with a funded account of its own; its member id.

        For a test on a shared deployment that changes a member's standing: it changes its
        own member's, never one that other tests use."""
        self.accounts[org_id], self.member_ids[org_id] = admit_member(
            self.env, self.consortium, self.accounts["bureau"], org_id, role)
        return self.member_ids[org_id]


def admit_member(env: ChainEnv, consortium: ConsortiumContract, bureau: LocalAccount,
                 org_id: str, role: Role) -> tuple[LocalAccount, int]:
    account = env.new_account(100)
    outcome = consortium.propose(bureau, ProposalAction.ADMIT, name=org_id, role=role,
                                 account=account.address)
    assert outcome.executed and outcome.member_id is not None
    return account, outcome.member_id


def deploy_network(env: ChainEnv) -> Network:
    start = env.client.block_number()
    bureau = env.new_account(100)
    accounts = {"bureau": bureau}
    consortium = ConsortiumContract.deploy(env.client, bureau, "Test Bureau", [bureau.address], 1)
    member_ids = {"bureau": 1}
    for org_id, role in [("school-a", Role.SCHOOL), ("school-b", Role.SCHOOL),
                         ("partner", Role.PARTNER), ("auditor", Role.AUDITOR)]:
        accounts[org_id], member_ids[org_id] = admit_member(env, consortium, bureau, org_id, role)
    registry = AnchorRegistryContract.deploy(env.client, bureau, consortium)
    return Network(env, consortium, registry, accounts, member_ids, start)
