"""DSSE envelopes (github.com/secure-systems-lab/dsse): what every statement travels in.

The payload bytes are kept exactly as signed; the ledger's leaf data is a canonical JSON form of the
envelope (SPEC §3) whose payload field is the base64 of those same bytes.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import InvalidStatement
from .keys import KeyPair

__all__ = ["PAYLOAD_TYPE", "Signature", "Envelope", "pae", "sign_envelope", "parse_envelope", "event_id_of"]

PAYLOAD_TYPE = "application/vnd.waybill.event+json"
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_SIGNATURES = 8


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what is actually signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def event_id_of(payload: bytes) -> str:
    """SPEC §1: ``sha256:`` + hex SHA-256 of the signed payload bytes."""
    return "sha256:" + hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @property
    def event_id(self) -> str:
        return event_id_of(self.payload)

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_json(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()}
                           for s in sorted(self.signatures, key=lambda s: (s.keyid, s.sig))],
        }

    def leaf_data(self) -> bytes:
        """SPEC §3 leaf data: sorted keys, ``,``/``:`` separators, signatures sorted by keyid."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()


def sign_envelope(payload: bytes, signers: Iterable[KeyPair], *, payload_type: str = PAYLOAD_TYPE) -> Envelope:
    message = pae(payload_type, payload)
    sigs = tuple(Signature(keyid=k.keyid, sig=k.sign(message)) for k in signers)
    if not sigs:
        raise InvalidStatement("an envelope needs at least one signature", field="signatures")
    return Envelope(payload_type=payload_type, payload=payload, signatures=sigs)


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidStatement(f"{field} must be a base64 string", field=field)
    try:
        # DSSE allows standard or URL-safe base64; padding may be omitted.
        text = value.replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidStatement(f"{field} is not valid base64", field=field) from exc


def parse_envelope(doc: Any, *, payload_type: str = PAYLOAD_TYPE, max_payload: int = MAX_PAYLOAD_BYTES) -> Envelope:
    """A DSSE envelope from its JSON form (a dict, str or bytes). Checks shape only, not signatures.
    ``payload_type``/``max_payload``: other envelopes than statements (a party-signed EPCIS document)."""
    if isinstance(doc, (bytes, bytearray)):
        try:
            doc = doc.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidStatement("envelope is not UTF-8", field="envelope") from exc
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except (ValueError, RecursionError) as exc:
            raise InvalidStatement("envelope is not valid JSON", field="envelope") from exc
    if not isinstance(doc, dict):
        raise InvalidStatement("an envelope must be a JSON object", field="envelope")
    unknown = set(doc) - {"payloadType", "payload", "signatures"}
    if unknown:
        raise InvalidStatement(f"unknown envelope field {sorted(unknown)[0]!r}", field="envelope")
    if doc.get("payloadType") != payload_type:
        raise InvalidStatement(f"payloadType must be {payload_type!r}", field="payloadType")
    payload = _b64(doc.get("payload"), "payload")
    if not payload:
        raise InvalidStatement("payload is empty", field="payload")
    if len(payload) > max_payload:
        raise InvalidStatement(f"payload is larger than {max_payload} bytes", field="payload")
    sigs_doc = doc.get("signatures")
    if not isinstance(sigs_doc, list) or not sigs_doc:
        raise InvalidStatement("signatures must be a non-empty list", field="signatures")
    if len(sigs_doc) > MAX_SIGNATURES:
        raise InvalidStatement(f"at most {MAX_SIGNATURES} signatures", field="signatures")
    sigs = []
    for s in sigs_doc:
        if not isinstance(s, dict) or set(s) - {"keyid", "sig"}:
            raise InvalidStatement("each signature is {keyid, sig}", field="signatures")
        kid = s.get("keyid")
        if not isinstance(kid, str) or len(kid) != 16 or not all(c in "0123456789abcdef" for c in kid):
            raise InvalidStatement("signature keyid must be 16 lowercase hex digits", field="signatures.keyid")
        sig = _b64(s.get("sig"), "signatures.sig")
        if len(sig) != 64:
            raise InvalidStatement("an Ed25519 signature is 64 bytes", field="signatures.sig")
        sigs.append(Signature(keyid=kid, sig=sig))
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(sigs))
