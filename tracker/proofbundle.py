"""Proof bundles: everything a consumer's phone (web/static/waybill-proof.js) or ``tracker verify-proof``
needs to check an item's path without trusting the server's word. Format: docs/proof-bundle.md.

A bundle holds the item's entries (the exact leaf bytes), one C2SP tlog-proof per entry against one
cosigned checkpoint, the `party` entries that registered every signer's key (also with proofs), the log
key and the witness policy. The verifier checks the checkpoint's log signature and witness quorum, each
entry's inclusion, each statement's signature under a key its party held at that time, and re-derives who
signed each step and in which order (``prev`` links).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, cast

from . import merkle
from .checkpoint import b64decode_strict, b64encode, parse_vkey
from .errors import InvalidInput, TrackerError, VerificationError
from .dsse import Envelope, parse_envelope
from .identifiers import ContainerKey, ItemKey
from .keys import is_valid_signature
from .ledger import Ledger
from .policy import Policy, check_checkpoint, parse_policy
from .store.base import CustomsReadTxn

__all__ = ["FORMAT", "build_bundle", "verify_bundle", "BundleResult", "format_tlog_proof", "parse_tlog_proof"]

FORMAT = "waybill-proof-bundle/v1"
TLOG_PROOF = "c2sp.org/tlog-proof@v1"


def format_tlog_proof(index: int, proof: list[bytes], checkpoint_note: str) -> str:
    return "\n".join([TLOG_PROOF, f"index {index}", *(b64encode(h) for h in proof)]) + "\n\n" + checkpoint_note


def parse_tlog_proof(text: str) -> tuple[int, list[bytes], str]:
    """(index, inclusion proof, checkpoint note) of a c2sp.org/tlog-proof@v1 text; ``extra`` is not used."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != TLOG_PROOF:
        raise VerificationError("not a c2sp.org/tlog-proof@v1 proof")
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        rest = rest[1:]
    m = re.fullmatch(r"index (0|[1-9][0-9]{0,18})", rest[0] if rest else "")
    if not m:
        raise VerificationError("tlog-proof needs an `index N` line")
    hashes = [b64decode_strict(line, "inclusion proof line") for line in rest[1:]]
    if any(len(h) != merkle.HASH_SIZE for h in hashes):
        raise VerificationError("an inclusion proof line is one 32-byte hash")
    return int(m.group(1)), hashes, note


def build_bundle(ledger: Ledger, item: ItemKey | ContainerKey, policy: Policy | None, *,
                 answer: Any = None) -> dict[str, Any]:
    """The bundle for ``item``, a product or a container (``answer``: its provenance.lookup, when the caller
    already has it)."""
    from .cosigning import policy_checkpoint
    from .provenance import lookup

    answer = answer if answer is not None else lookup(ledger, item)
    event_ids = [step["event_id"] for step in answer.path]
    with ledger.store.read() as txn:
        entries = txn.entries_by_event_ids(event_ids)
    path_leaves = sorted(e.leaf_index for e in entries.values())
    registry_leaves = _registry_leaves(ledger, {e.actor for e in entries.values()} | {"admin"})
    need = max(path_leaves + registry_leaves) + 1 if path_leaves or registry_leaves else 1
    note, check = policy_checkpoint(ledger, policy, at_least=need)
    size = int(note.split("\n", 2)[1])
    if size < need:
        raise InvalidInput("the ledger has no checkpoint covering this item yet", code="no_checkpoint")
    with ledger.store.read() as txn:
        rows = txn.entries_at(path_leaves + registry_leaves)
    out = []
    for idx in sorted(set(path_leaves + registry_leaves)):
        _, _, proof = ledger.inclusion_proof(leaf_index=idx, tree_size=size)
        out.append({"role": "path" if idx in path_leaves else "registry", "leaf_index": idx,
                    "entry": base64.b64encode(rows[idx].leaf_data).decode(), "proof": format_tlog_proof(idx, proof, note)})
    return {"format": FORMAT, "item": str(item), "origin": ledger.origin, "log_vkey": ledger.vkey,
            "policy": policy.text if policy is not None else "", "checkpoint": note, "tree_size": size,
            "quorum_met": bool(check and check.quorum_met), "entries": out,
            "claimed_verdict": answer.verdict}


def _registry_leaves(ledger: Ledger, party_ids: set[str]) -> list[int]:
    """Genesis, and for each party every `party` statement (its key history: keys are only ever added or revoked)."""
    out = {0}
    with ledger.store.read() as txn:
        for e in cast(CustomsReadTxn, txn).entries_of_types(["party"]):
            doc = json.loads(base64.b64decode(json.loads(e.leaf_data)["payload"]))
            if doc.get("party", {}).get("id") in party_ids:
                out.add(e.leaf_index)
    return sorted(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleResult:
    ok: bool
    problems: tuple[str, ...]
    witnessed: int
    witnesses: int
    quorum_met: bool
    steps: tuple[Mapping[str, Any], ...] = field(default=())

    def summary(self) -> str:
        if not self.ok:
            return "NOT VERIFIED: " + "; ".join(self.problems)
        quorum = "meets" if self.quorum_met else "does NOT meet"
        return (f"checked against {self.witnessed} of {self.witnesses} witnesses ({quorum} the policy); "
                f"{len(self.steps)} steps signed by their parties, in order")


def _time_ok(key: Mapping[str, Any], when: str) -> bool:
    return key.get("not_before", "") <= when and (not key.get("revoked_at") or when < key["revoked_at"])


def verify_bundle(bundle: Mapping[str, Any], *, policy: Policy | None = None, log_vkey: str | None = None,
                  item: str | None = None) -> BundleResult:
    """Check a bundle. ``policy``/``log_vkey`` override the bundle's own (trust anchors you got elsewhere)."""
    problems: list[str] = []
    try:
        if bundle.get("format") != FORMAT:
            raise VerificationError(f"not a {FORMAT} bundle")
        log = parse_vkey(log_vkey or bundle["log_vkey"])
        pol = policy or parse_policy(bundle.get("policy") or f"log {log.vkey}\nquorum none\n")
        check = check_checkpoint(bundle["checkpoint"], pol, origin=log.name, log=log)
        cp = check.cosigned.checkpoint
    except (VerificationError, InvalidInput, KeyError, TypeError) as exc:
        return BundleResult(ok=False, problems=(f"checkpoint: {exc}",), witnessed=0, witnesses=0, quorum_met=False)
    docs: list[tuple[int, str, Envelope, dict[str, Any], bytes]] = []
    for e in bundle.get("entries", []):
        try:
            data = b64decode_strict(e["entry"], "entry")
            index, proof, note = parse_tlog_proof(e["proof"])
            if note != bundle["checkpoint"] or index != e["leaf_index"]:
                raise VerificationError("its proof is not against the bundle's checkpoint")
            merkle.verify_inclusion(merkle.leaf_hash(data), index, cp.size, proof, cp.root_hash)
            env = json.loads(data)
            payload = b64decode_strict(env["payload"], "payload")
            docs.append((index, e.get("role", "path"), parse_envelope(env), json.loads(payload), payload))
        except (TrackerError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"entry {e.get('leaf_index')}: {exc}")
    keys: dict[str, list[dict[str, Any]]] = {}
    steps: list[dict[str, Any]] = []
    earlier: set[str] = set()
    target = item or bundle.get("item")
    for index, role, env, doc, payload in sorted(docs, key=lambda d: d[0]):
        if doc.get("type") == "party" and index == 0:
            keys["admin"] = doc["party"]["keys"]
        signer_keys = keys.get(doc.get("actor", ""), [])
        pae = env.pae()
        good = any(_key_id(k) == sig.keyid and _time_ok(k, doc.get("time", "")) and is_valid_signature(
            base64.b64decode(k["public_key"]), pae, sig.sig) for sig in env.signatures for k in signer_keys)
        if not good:
            problems.append(f"entry {index}: not signed by a key {doc.get('actor')} held at {doc.get('time')}")
        if doc.get("type") == "party":
            keys[doc["party"]["id"]] = doc["party"]["keys"]
            continue
        event_id = "sha256:" + hashlib.sha256(payload).hexdigest()
        link = (doc.get("prev") or {}).get(target or "")
        if link is not None and link not in earlier:
            problems.append(f"entry {index}: its previous step for {target} is not an earlier step of this path")
        earlier.add(event_id)
        steps.append({"leaf_index": index, "type": doc.get("type"), "actor": doc.get("actor"), "time": doc.get("time")})
    if target and not any(target in (d[3].get("items") or []) for d in docs):
        problems.append(f"no entry names item {target}")
    return BundleResult(ok=not problems, problems=tuple(problems), witnessed=len(check.witnessed_by),
                        witnesses=check.total, quorum_met=check.quorum_met, steps=tuple(steps))


def _key_id(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(base64.b64decode(key["public_key"])).digest()[:8].hex()

