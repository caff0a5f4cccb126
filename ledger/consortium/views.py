"""Read-only views of the network, straight from the chain."""

from __future__ import annotations

from typing import Any

from ledger.chain import ChainAPI
from ledger.consortium.deployment import Deployment
from ledger.contracts.bindings import ConsortiumContract


def network_view(client: ChainAPI, deployment: Deployment | None, *, embedded: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "chain_id": client.chain_id,
        "head": client.block_number(),
        "embedded": embedded,
        "contracts": None,
        "members": [],
    }
    if deployment is None:
        return view
    view["contracts"] = {"consortium": deployment.consortium,
                         "anchor_registry": deployment.anchor_registry,
                         "identity_registry": deployment.identity_registry,
                         "deployed_block": deployment.deployed_block}
    consortium = ConsortiumContract.at(client, deployment.consortium)
    for member_id in range(1, consortium.member_count() + 1):
        member = consortium.member(member_id)
        view["members"].append({
            "member_id": member_id,
            "org_id": deployment.org_of_member(member_id),
            "name": member.name,
            "role": member.role.name.lower(),
            "status": member.status.name.lower(),
            "accounts": list(member.accounts),
        })
    view["governors"] = consortium.governors()
    view["threshold"] = consortium.threshold()
    return view
