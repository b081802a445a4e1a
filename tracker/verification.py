"""One verification pipeline for a statement's signer, used at the door and in every judgement.

The checks run in a fixed order, like in-toto's numbered steps -- 1 the signer is a registered party, 2 a
signature is by one of its keys, 3 that signature verifies, 4 the key was not revoked (by the time the
statement reached the ledger, at the door; by the statement's own time, in a lookup), 5 the key was valid at
the statement's time, 6 the signer holds the role the statement type needs. The door (admission, audit) raises
on the first failure; a lookup turns it into a consumer-facing reason. Both read the same ``SignerFailure``,
so they cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import AbstractSet, Callable

from .dsse import Envelope
from .keys import SignatureJob
from .parties import PartyRecord
from .statements import SIGNER_ROLES, Statement
from .timefmt import format_time

__all__ = ["SignerFailure", "check_signer", "REASON_FOR"]

# Door code -> the reason code a lookup reports for it (SPEC §4 reason codes).
REASON_FOR = {
    "unknown_party": "unauthorized_signer",
    "unknown_key": "unauthorized_signer",
    "key_not_valid": "unauthorized_signer",
    "bad_signature": "bad_signature",
    "revoked_key": "revoked_key",
    "unauthorized_signer": "unauthorized_signer",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SignerFailure:
    """Why a signer check failed: ``code`` for the door (stable API error code), ``reason`` for a lookup,
    ``detail`` for operators, ``message`` for consumers."""

    code: str
    detail: str
    message: str

    @property
    def reason(self) -> str:
        return REASON_FOR[self.code]


def check_signer(st: Statement, env: Envelope, party: PartyRecord | None, *,
                 is_valid: Callable[[bytes, bytes, bytes], bool],
                 revoked_by: datetime | None = None,
                 verified: AbstractSet[SignatureJob] = frozenset()) -> SignerFailure | None:
    """None when one signature of ``env`` passes checks 1-5 and the signer passes 6; else the first failure.
    ``revoked_by``: the door's clock (a key revoked by then writes nothing more, whatever time it claims).
    ``verified`` holds (public key, message, signature) triples already verified in bulk; ``is_valid`` checks
    the others (public key, message, signature)."""
    if party is None:
        return SignerFailure(code="unknown_party", detail=f"actor {st.actor!r} is not a registered party",
                             message=f"Signed in the name of {st.actor}, which is not a registered party.")
    message = env.pae()
    first: SignerFailure | None = None
    for sig in env.signatures:
        failure = _check_signature(st, party, sig.keyid, sig.sig, message, is_valid=is_valid,
                                   revoked_by=revoked_by, verified=verified)
        if failure is None:
            break
        first = first or failure
    else:
        return first or SignerFailure(code="bad_signature", detail="the envelope carries no signature",
                                      message="This event carries no signature.")
    if not set(party.roles) & SIGNER_ROLES[st.type]:
        return SignerFailure(code="unauthorized_signer",
                             detail=f"{party.id} (roles: {', '.join(party.roles)}) may not sign a {st.type} statement",
                             message=f"{party.name} is not allowed to record a {st.type} event.")
    return None


def _check_signature(st: Statement, party: PartyRecord, keyid: str, sig: bytes, message: bytes, *,
                     is_valid: Callable[[bytes, bytes, bytes], bool], revoked_by: datetime | None,
                     verified: AbstractSet[SignatureJob]) -> SignerFailure | None:
    key = party.key(keyid)
    if key is None:
        return SignerFailure(code="unknown_key", detail=f"key {keyid} is not a key of {party.id}",
                             message=f"Signed with a key that does not belong to {party.name}.")
    if (key.public_key, message, sig) not in verified and not is_valid(key.public_key, message, sig):
        return SignerFailure(code="bad_signature", detail=f"signature by key {keyid} does not verify",
                             message=f"The signature of {party.name} on this event does not verify.")
    revoked = key.revoked_at is not None and (st.time >= key.revoked_at or (
        revoked_by is not None and key.revoked_by(revoked_by)))
    if revoked:
        assert key.revoked_at is not None
        return SignerFailure(code="revoked_key", detail=f"key {keyid} of {party.id} is revoked",
                             message=f"Signed by {party.name} with a key revoked since "
                                     f"{format_time(key.revoked_at)}.")
    if not key.valid_at(st.time):
        return SignerFailure(code="key_not_valid", detail=f"key {keyid} of {party.id} is not valid at {st.time_str}",
                             message=f"Signed by {party.name} with a key not yet valid at that time.")
    return None
