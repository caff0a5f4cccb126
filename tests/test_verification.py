"""Every verification failure names its reason; checked against the chain, not the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.anchoring.proof import AnchorProof
from ledger.contracts.bindings import AnchorKind, Role
from ledger.credentials import jose, sdjwt
from ledger.credentials.anchorproof import credential_leaf, envelope, read_credential
from ledger.credentials.did import issuer_did, key_id
from ledger.credentials.roster import parse_one
from ledger.credentials.service import CredentialService
from ledger.credentials.types import CHINA_TZ, CredentialType, vc_payload
from ledger.credentials.verify import CredentialVerifier
from ledger.errors import InvalidInput, PermissionDenied
from ledger.merkle import MerkleTree
from ledger.node import NodeServices, init_network
from ledger.settings import Settings
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import transcript_row

URN_1 = "urn:uuid:00000000-0000-4000-8000-000000000001"


def _demo_network(data_dir: Path) -> Iterator[NodeServices]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "verification tests")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    node = init_network(Settings(data_dir=data_dir), DEMO_CONSORTIUM)
    try:
        yield NodeServices(node)
    finally:
        node.close()
        mp.undo()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeServices, CredentialService]]:
    for services in _demo_network(tmp_path_factory.mktemp("data")):
        yield services, services.credentials


@pytest.fixture
def own_network(tmp_path: Path) -> Iterator[NodeServices]:
    """A network of its own, for a test that changes what the others share (roles, statuses)."""
    yield from _demo_network(tmp_path / "data")


def issue_one(svc: CredentialService, org: str = "school-a", ctype: str = "transcript",
              **extra: object) -> tuple[str, AnchorProof, str]:
    row = parse_one(transcript_row(1, courses=3, **extra), CredentialType(ctype))
    batch = svc.issue(org, CredentialType(ctype), [row])
    issued = batch.credentials[0]
    return svc.get(issued.credential_id).sd_jwt, issued.anchor, issued.credential_id


def failures(svc: CredentialService, sd_jwt: str, anchor: AnchorProof | None, **kw: object) -> list[str]:
    return svc.verifier.verify(sd_jwt, anchor, **kw).failures  # type: ignore[arg-type]


def test_a_fresh_credential_passes_every_check(world) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    sd_jwt, anchor, _ = issue_one(svc)
    result = svc.verifier.verify(sd_jwt, anchor)
    assert result.valid and result.failures == []
    outcomes = {c.name: c.outcome for c in result.checks}
    assert outcomes["anchor"] == outcomes["membership"] == outcomes["signing_key"] == "passed"
    assert outcomes["holder_binding"] == "skipped"
    assert result.issuer["name"] and result.anchored_at
    # The same credential verifies with a fresh verifier that only knows the registry.
    fresh = CredentialVerifier(svc.client, svc.deployment.anchor_registry)
    assert fresh.verify(sd_jwt, anchor).valid
    assert fresh.verify(sd_jwt, None).failures == ["anchor_proof_missing"]  # it cannot look it up


def test_issuer_unknown_and_signature_invalid(world) -> None:  # type: ignore[no-untyped-def]
    services, svc = world
    sd_jwt, anchor, _ = issue_one(svc)
    parsed = sdjwt.parse(sd_jwt)
    stranger = Ed25519PrivateKey.generate()
    # Signed by a key nobody registered, under an invented key id.
    did = issuer_did(svc.client.chain_id, svc.deployment.consortium, 2)
    foreign_kid = key_id(did, stranger.public_key().public_bytes_raw())
    forged = jose.sign_jws({**parsed.header, "kid": foreign_kid}, parsed.payload, stranger)
    assert failures(svc, forged + sd_jwt[len(parsed.issuer_jwt):], anchor) == ["issuer_unknown"]
    # The school's real key id, but signed by someone else.
    forged = jose.sign_jws(parsed.header, parsed.payload, stranger)
    assert failures(svc, forged + sd_jwt[len(parsed.issuer_jwt):], anchor) == ["signature_invalid"]


def test_not_anchored(world) -> None:  # type: ignore[no-untyped-def]
    services, svc = world
    keys = services.keys_for("school-a")
    org = svc.deployment.organisations["school-a"]
    did = issuer_did(svc.client.chain_id, svc.deployment.consortium, org["member_id"])
    row = parse_one(transcript_row(9, courses=2), CredentialType.TRANSCRIPT)
    now = datetime.now(UTC).replace(microsecond=0)
    payload = vc_payload(CredentialType.TRANSCRIPT, row, credential_id=URN_1,
                         issuer_id=did, issuer_name=org["name"], valid_from=now, valid_until=None)
    issued = sdjwt.issue(payload, key=keys.ed25519_private, kid=key_id(did, keys.ed25519_public_bytes))
    leaf = credential_leaf(jose.decode_jws_unverified(issued.issuer_jwt)[1])
    lonely = AnchorProof("0x" + leaf.hex(), [], "0x" + MerkleTree([leaf]).root.hex(), svc.client.chain_id,
                       svc.deployment.anchor_registry, None, None)
    sd_jwt, anchor, _ = issue_one(svc)
    assert failures(svc, sd_jwt, anchor) == []  # its root is cached now
    cached = svc.verifier._root_info.cache_info().currsize
    assert failures(svc, issued.compact, lonely) == ["anchor_root_unknown"]
    assert failures(svc, issued.compact, None) == ["anchor_proof_missing"]  # the node knows none
    # an unknown root is not cached, and does not empty the cache (anyone can send one)
    assert svc.verifier._root_info.cache_info().currsize == cached > 0
    # anchored later, it is found
    svc.anchoring.anchor("school-a", "credential", [leaf])
    assert failures(svc, issued.compact, lonely) == []


def test_the_proofs_block_and_transaction_must_be_the_chains(world) -> None:  # type: ignore[no-untyped-def]
    # they are shown with the verdict, so a file cannot claim another block or transaction
    _, svc = world
    sd_jwt, anchor, _ = issue_one(svc)
    _, other, _ = issue_one(svc)  # another batch: another transaction, another block
    assert anchor.tx_hash and anchor.block_number is not None and other.tx_hash != anchor.tx_hash
    result = svc.verifier.verify(sd_jwt, anchor)
    assert result.valid and result.anchor["tx_hash"] == anchor.tx_hash
    assert result.anchor["block_number"] == anchor.block_number
    for changed in ({"tx_hash": other.tx_hash}, {"tx_hash": "0x" + "ab" * 32},
                    {"block_number": other.block_number}, {"block_number": anchor.block_number + 10**6}):
        wrong = AnchorProof.from_dict({**anchor.to_dict(), **changed})
        assert failures(svc, sd_jwt, wrong) == [
            "anchor_tx_mismatch" if "tx_hash" in changed else "anchor_block_mismatch"], changed
    # both are optional: a proof without them is checked on the root alone
    bare = AnchorProof.from_dict({**anchor.to_dict(), "tx_hash": None, "block_number": None})
    assert failures(svc, sd_jwt, bare) == []


@pytest.mark.parametrize("change", [
    {"extra": 1}, {"chain_id": "4477"}, {"chain_id": True}, {"chain_id": 0}, {"block_number": -1},
    {"block_number": 1.5}, {"tx_hash": "0x12"}, {"tx_hash": 5}, {"leaf": None}, {"proof": "0x"},
    {"proof": ["0x" + "00" * 32] * 65}, {"contract": "0x1234"},
])
def test_an_anchor_proof_has_a_schema(world, change: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    _, anchor, _ = issue_one(svc)
    with pytest.raises(InvalidInput) as caught:
        AnchorProof.from_dict({**anchor.to_dict(), **change})
    assert caught.value.code == "malformed"
    for missing in ("leaf", "proof", "root", "chain_id", "contract"):
        raw = anchor.to_dict()
        del raw[missing]
        with pytest.raises(InvalidInput, match=missing):
            AnchorProof.from_dict(raw)


def test_a_credential_file_has_a_schema(world) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    sd_jwt, anchor, _ = issue_one(svc)
    assert read_credential(envelope(sd_jwt, anchor)) == (sd_jwt, anchor)
    for bad in ({**envelope(sd_jwt, anchor), "comment": "x"}, {**envelope(sd_jwt, anchor), "format": "v2"},
                {**envelope(sd_jwt, anchor), "format": None}):
        with pytest.raises(InvalidInput) as caught:
            read_credential(bad)
        assert caught.value.code == "malformed"


def sign_and_anchor(services: NodeServices, org_id: str, key: Ed25519PrivateKey, *,
                    anchor: bool = True, anchored_by: str | None = None) -> tuple[str, AnchorProof | None]:
    """A transcript that ``org_id`` signs with ``key`` and (unless ``anchor`` is false)
    anchors itself (or ``anchored_by`` does) in a batch of one, straight through the contracts."""
    svc = services.credentials
    keys = services.keys_for(anchored_by or org_id)
    org = svc.deployment.organisations[org_id]
    did = issuer_did(svc.client.chain_id, svc.deployment.consortium, org["member_id"])
    row = parse_one(transcript_row(3, courses=2), CredentialType.TRANSCRIPT)
    payload = vc_payload(CredentialType.TRANSCRIPT, row, credential_id=f"urn:uuid:{uuid.uuid4()}",
                         issuer_id=did, issuer_name=org["name"],
                         valid_from=datetime.now(UTC).replace(microsecond=0), valid_until=None)
    issued = sdjwt.issue(payload, key=key, kid=key_id(did, key.public_key().public_bytes_raw()))
    if not anchor:
        return issued.compact, None
    leaf = credential_leaf(jose.decode_jws_unverified(issued.issuer_jwt)[1])
    tree = MerkleTree([leaf])
    result = svc.registry.anchor(keys.account, tree.root, AnchorKind.CREDENTIAL, 1, b"\x00" * 32)
    return issued.compact, AnchorProof("0x" + leaf.hex(), [], "0x" + tree.root.hex(), svc.client.chain_id,
                                     svc.deployment.anchor_registry, result.tx_hash, result.block_number)


def test_issuer_without_the_role_when_anchored(world) -> None:  # type: ignore[no-untyped-def]
    """A partner anchors a transcript it signed itself: partners may not issue transcripts."""
    services, svc = world
    sd_jwt, anchor = sign_and_anchor(services, "partner", services.keys_for("partner").ed25519_private)
    assert failures(svc, sd_jwt, anchor) == ["issuer_not_authorised"]


def test_who_may_issue_follows_the_roles_on_chain(own_network: NodeServices) -> None:
    """Governance changes roles after set-up: a partner made a school issues transcripts that
    verify; a school made a partner may not issue them, and nothing reaches the chain."""
    services = own_network
    svc = services.credentials
    bureau, school_a = (services.keys_for(o).account for o in ("bureau", "school-a"))

    def change_role(org_id: str, role: Role) -> None:
        member_id = svc.deployment.organisations[org_id]["member_id"]
        proposal = svc.consortium.propose_change_role(bureau, member_id, role)
        assert svc.consortium.approve(school_a, proposal).executed

    row = parse_one(transcript_row(1, courses=2), CredentialType.TRANSCRIPT)
    change_role("partner", Role.SCHOOL)
    issued = svc.issue("partner", CredentialType.TRANSCRIPT, [row]).credentials[0]
    assert failures(svc, svc.get(issued.credential_id).sd_jwt, issued.anchor) == []

    change_role("school-b", Role.PARTNER)
    head = svc.client.block_number()
    with pytest.raises(PermissionDenied) as denied:
        svc.issue("school-b", CredentialType.TRANSCRIPT, [row])
    assert denied.value.code == "role_not_allowed" and "partner" in denied.value.message
    assert svc.client.block_number() == head


def test_credential_rows_follow_status_changes_made_elsewhere(own_network: NodeServices) -> None:
    """A status change that reached the chain but not this node's row (made through another
    node, or cut off by a crash between the chain and the database) is written into the row
    once indexed; a change made here, with its note, is left as it is."""
    services = own_network
    svc = services.credentials
    rows = [parse_one(transcript_row(n, courses=2), CredentialType.TRANSCRIPT) for n in range(4)]
    revoked, noted, replaced, newer = svc.issue("school-a", CredentialType.TRANSCRIPT, rows).credentials
    bureau = services.keys_for("bureau").account

    def on_chain_only(issued: Any, action: str, *args: Any) -> None:
        getattr(svc.registry, action)(bureau, issued.anchor.leaf, issued.anchor.root,
                                      issued.anchor.proof_bytes(), *args)

    on_chain_only(revoked, "revoke", 7)
    on_chain_only(replaced, "supersede", newer.anchor.leaf, 4)
    svc.change_status("school-a", noted.credential_id, "suspend", reason=2, note="under review")
    assert svc.get(revoked.credential_id).status == "valid"  # the row has not heard yet

    services.node.indexer().run_once()
    assert svc.follow_chain_statuses() == 2
    row = svc.get(revoked.credential_id)
    assert (row.status, row.status_reason, row.status_note) == ("revoked", 7, None)
    row = svc.get(replaced.credential_id)
    assert (row.status, row.status_reason, row.superseded_by) == ("superseded", 4, newer.credential_id)
    row = svc.get(noted.credential_id)
    assert (row.status, row.status_reason, row.status_note) == ("suspended", 2, "under review")
    assert svc.get(newer.credential_id).status == "valid"
    assert svc.follow_chain_statuses() == 0  # nothing left to write


def test_a_correction_cut_short_is_finished_after_a_restart(own_network: NodeServices) -> None:
    """The process stops after a correction's new credential is issued and before the old
    one is superseded: the next start supersedes it. A correction still under way is left
    to its own request."""
    svc = own_network.credentials
    row = parse_one(transcript_row(1, courses=2), CredentialType.TRANSCRIPT)
    old = svc.issue("school-a", CredentialType.TRANSCRIPT, [row]).credentials[0]
    # correct()'s first step alone, as if the process had stopped right after it; while
    # a request is making a correction, the background pass leaves it alone
    svc._correcting.add(old.credential_id)
    new = svc.issue("school-a", CredentialType.TRANSCRIPT, [row],
                    supersedes=old.credential_id).credentials[0]
    assert svc.finish_corrections() == 0

    restarted = NodeServices(own_network.node).credentials
    assert restarted.finish_corrections() == 1
    record = restarted.get(old.credential_id)
    assert (record.status, record.superseded_by) == ("superseded", new.credential_id)
    result = restarted.verifier.verify(restarted.get(old.credential_id).sd_jwt, old.anchor)
    assert result.failures == ["superseded"]
    assert restarted.verifier.verify(restarted.get(new.credential_id).sd_jwt, new.anchor).valid
    assert restarted.finish_corrections() == 0


def test_the_signing_key_must_be_valid_when_anchored(world) -> None:  # type: ignore[no-untyped-def]
    """A school's second key: unknown until registered, valid from then on, and after it is
    retired a credential signed with it and anchored later fails, while one anchored before
    stays valid. The verifier has seen the key at each step: nothing it remembers is stale."""
    services, svc = world
    school = services.keys_for("school-a")
    second = Ed25519PrivateKey.generate()
    unregistered, _ = sign_and_anchor(services, "school-a", second, anchor=False)
    assert failures(svc, unregistered, None) == ["issuer_unknown"]

    svc.consortium.add_signing_key(school.account, second.public_key().public_bytes_raw())
    before, before_anchor = sign_and_anchor(services, "school-a", second)
    assert failures(svc, before, before_anchor) == []

    svc.consortium.retire_signing_key(school.account, second.public_key().public_bytes_raw())
    after, after_anchor = sign_and_anchor(services, "school-a", second)
    result = svc.verifier.verify(after, after_anchor)
    assert result.failures == ["signing_key_invalid"]
    assert {c.name: c.outcome for c in result.checks}["signing_key"] == "failed"
    assert failures(svc, before, before_anchor) == []  # anchored while the key was valid
    # A verifier that never saw the key before agrees.
    fresh = CredentialVerifier(svc.client, svc.deployment.anchor_registry)
    assert fresh.verify(after, after_anchor).failures == ["signing_key_invalid"]
    assert fresh.verify(before, before_anchor).failures == []


def test_suspend_reinstate_revoke(world) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    sd_jwt, anchor, cid = issue_one(svc)
    svc.change_status("school-a", cid, "suspend", reason=2)
    assert failures(svc, sd_jwt, anchor) == ["suspended"]
    svc.change_status("school-a", cid, "reinstate")
    assert failures(svc, sd_jwt, anchor) == []
    # Another school may not touch it (nor learn that it exists); the bureau may.
    with pytest.raises(Exception) as err:
        svc.change_status("school-b", cid, "revoke")
    assert getattr(err.value, "code", "") == "credential_not_found"
    svc.change_status("bureau", cid, "revoke", reason=9)
    assert failures(svc, sd_jwt, anchor) == ["revoked"]
    assert svc.get(cid).status == "revoked"


def test_correction_supersedes_and_points_to_the_new_credential(world) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    sd_jwt, anchor, cid = issue_one(svc)
    row = parse_one(transcript_row(1, courses=4), CredentialType.TRANSCRIPT)
    batch, old = svc.correct("school-a", cid, row, reason=5, note="a grade was wrong")
    new_id = batch.credentials[0].credential_id
    assert old.status == "superseded" and old.superseded_by == new_id
    assert svc.get(new_id).supersedes == cid
    result = svc.verifier.verify(sd_jwt, anchor)
    assert result.failures == ["superseded"]
    status = next(c for c in result.checks if c.name == "status")
    assert status.details["superseded_by"] == batch.credentials[0].leaf
    assert svc.verifier.verify(svc.get(new_id).sd_jwt, batch.credentials[0].anchor).valid


def test_validity_window(world) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    later = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    sd_jwt, anchor, _ = issue_one(svc, valid_from=later)
    assert failures(svc, sd_jwt, anchor) == ["not_yet_valid"]
    until = (datetime.now(CHINA_TZ) + timedelta(days=1)).date().isoformat()  # a date in China
    sd_jwt, anchor, _ = issue_one(svc, valid_until=until)
    assert failures(svc, sd_jwt, anchor) == []
    in_a_week = (datetime.now(UTC) + timedelta(days=7)).timestamp()
    assert failures(svc, sd_jwt, anchor, now=in_a_week) == ["expired"]


def test_holder_binding_and_shares(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    _, anchor, cid = issue_one(svc)
    from ledger.credentials.service import _claim_key, claim_code  # noqa: PLC2701

    holder = Ed25519PrivateKey.generate()
    code = claim_code(_claim_key(svc.keys.keys_for("school-a")), cid)
    bound = svc.redeem(code, jose.ed25519_jwk(holder.public_key()))["sd_jwt"]
    assert failures(svc, bound, anchor, require_holder_binding=True) == ["holder_binding_missing"]
    aud = "https://verifier.example"
    presented = sdjwt.add_key_binding(bound, holder_key=holder, aud=aud, nonce="n-1")
    assert failures(svc, presented, anchor, require_holder_binding=True, aud=aud) == []
    assert failures(svc, presented, anchor, require_holder_binding=True,
                    aud="https://elsewhere.example") == ["holder_binding_invalid"]
    # A KB-JWT made by someone else's key (the library refuses to make one, so forge it).
    kb = jose.sign_jws({"alg": "EdDSA", "typ": "kb+jwt"},
                       {"iat": int(datetime.now(UTC).timestamp()), "aud": aud, "nonce": "n",
                        "sd_hash": sdjwt.sd_hash(bound)}, Ed25519PrivateKey.generate())
    impostor = bound + kb
    assert failures(svc, impostor, anchor, require_holder_binding=True, aud=aud) == ["holder_binding_invalid"]
    # Shares expire.
    share, _token = svc.create_share(presented, 1, audience=aud, anchor=anchor)
    assert svc.verify_share(share.id)[1].failures == []
    _, late = svc.verify_share(share.id, now=datetime.now(UTC) + timedelta(days=2))
    assert late.failures == ["share_expired"]


# -- guards that a one-line change of the code would remove (issue 18, item 13) -------------------


def redeemed_and_shared(svc: CredentialService, cid: str, anchor: AnchorProof, *,
                        days: int) -> tuple[Any, str]:
    """The credential redeemed into a fresh holder key, and shared for `days`: (share, token)."""
    from ledger.credentials.service import _claim_key, claim_code  # noqa: PLC2701

    holder = Ed25519PrivateKey.generate()
    bound = svc.redeem(claim_code(_claim_key(svc.keys.keys_for("school-a")), cid),
                       jose.ed25519_jwk(holder.public_key()))["sd_jwt"]
    aud = "https://verifier.example"
    return svc.create_share(sdjwt.add_key_binding(bound, holder_key=holder, aud=aud, nonce="n"), days,
                            audience=aud, anchor=anchor)


def test_a_root_anchored_by_another_member_than_the_issuer_does_not_count(world) -> None:  # type: ignore[no-untyped-def]
    """School B anchors a transcript that school A signed: the anchor is not A's."""
    services, svc = world
    sd_jwt, anchor = sign_and_anchor(services, "school-a", services.keys_for("school-a").ed25519_private,
                                     anchored_by="school-b")
    result = svc.verifier.verify(sd_jwt, anchor)
    assert result.failures == ["anchor_other_member"]
    details = next(c for c in result.checks if c.name == "anchor").details
    assert details["anchored_by"] == svc.deployment.organisations["school-b"]["member_id"]
    assert details["issuer"] == svc.deployment.organisations["school-a"]["member_id"]
    # Anchored by A itself, the same kind of file passes.
    sd_jwt, anchor = sign_and_anchor(services, "school-a", services.keys_for("school-a").ed25519_private)
    assert failures(svc, sd_jwt, anchor) == []


def test_the_default_status_source_is_read_fresh(world) -> None:  # type: ignore[no-untyped-def]
    """A verifier that reads statuses straight from the contract sees a revocation made after
    its first answer: the status is never remembered."""
    services, svc = world
    sd_jwt, anchor, cid = issue_one(svc)
    fresh = CredentialVerifier(svc.client, svc.deployment.anchor_registry)
    assert fresh.verify(sd_jwt, anchor).failures == []
    svc.change_status("school-a", cid, "revoke", reason=4)
    assert fresh.verify(sd_jwt, anchor).failures == ["revoked"]


def test_validity_and_share_expiry_end_at_their_instant(world) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    until = (datetime.now(CHINA_TZ) + timedelta(days=3)).date().isoformat()
    sd_jwt, anchor, cid = issue_one(svc, valid_until=until)
    valid_until = datetime.fromisoformat(
        sdjwt.parse(sd_jwt).payload["validUntil"].replace("Z", "+00:00")).timestamp()
    assert failures(svc, sd_jwt, anchor, now=valid_until - 1) == []
    assert failures(svc, sd_jwt, anchor, now=valid_until) == ["expired"]

    share, _ = redeemed_and_shared(svc, cid, anchor, days=1)
    assert svc.verify_share(share.id, now=share.expires_at - timedelta(microseconds=1))[1].failures == []
    assert svc.verify_share(share.id, now=share.expires_at)[1].failures == ["share_expired"]


def test_a_share_is_withdrawn_only_with_its_token(world) -> None:  # type: ignore[no-untyped-def]
    _, svc = world
    _, anchor, cid = issue_one(svc)
    share, token = redeemed_and_shared(svc, cid, anchor, days=30)
    for wrong in ("", "x", token[:-1], token + "x", token.upper() if token != token.upper() else "y"):
        with pytest.raises(PermissionDenied) as refused:
            svc.withdraw_share(share.id, wrong)
        assert refused.value.code == "bad_withdraw_token"
        assert svc.get_share(share.id).withdrawn_at is None
        assert svc.verify_share(share.id)[1].failures == []
    svc.withdraw_share(share.id, token)
    assert svc.verify_share(share.id)[1].failures == ["share_withdrawn"]
