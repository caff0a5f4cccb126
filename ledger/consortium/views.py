"""Read-only views of the network, straight from the chain."""

from __future__ import annotations

from typing import Any

from ledger.contracts.bindings import ConsortiumContract
from ledger.node import Node


def network_view(node: Node) -> dict[str, Any]:
    client = node.client
    view: dict[str, Any] = {
        "chain_id": client.chain_id,
        "head": client.block_number(),
        "embedded": node.chain is not None,
        "contracts": None,
        "members": [],
    }
    deployment = node.deployment
    if deployment is None:
        return view
    view["contracts"] = {"consortium": deployment.consortium,
                         "anchor_registry": deployment.anchor_registry,
                         "deployed_block": deployment.deployed_block}
    consortium = ConsortiumContract.at(client, deployment.consortium)
    org_of = {info["member_id"]: org_id for org_id, info in deployment.organisations.items()}
    for member_id in range(1, consortium.member_count() + 1):
        member = consortium.member(member_id)
        view["members"].append({
            "member_id": member_id,
            "org_id": org_of.get(member_id),
            "name": member.name,
            "role": member.role.name.lower(),
            "status": member.status.name.lower(),
            "accounts": list(member.accounts),
        })
    view["governors"] = consortium.governors()
    view["threshold"] = consortium.threshold()
    return view
