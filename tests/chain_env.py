"""A chain to test against: a client plus a funded account that can fund others."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.chain import ChainClient

ETHER = 10**18


@dataclass
class ChainEnv:
    name: str
    client: ChainClient
    funder: LocalAccount
    _made: list[LocalAccount] = field(default_factory=list)

    def new_account(self, ether: int = 10) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.client.transfer(self.funder, account.address, ether * ETHER)
        self._made.append(account)
        return account
