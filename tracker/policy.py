"""Witness policies in the C2SP tlog-policy format: which logs, which witnesses, and how many of them
must have cosigned a checkpoint before anyone relies on it.

The same file configures the ledger (witness URLs to collect cosignatures from), its mirrors and the
consumer page (which shows a verdict as fully verified only on a checkpoint that meets the quorum)::

    log waybill.example/ledger+1a2b3c4d+AQ...
    witness w1 witness1.example/w+5e6f7a8b+BA... http://127.0.0.1:7001
    witness w2 witness2.example/w+9c0d1e2f+BA... http://127.0.0.1:7002
    group both 2 w1 w2
    quorum both
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import AbstractSet, Mapping, Sequence

from .checkpoint import NoteVerifier, parse_vkey
from .cosignature import CosignedCheckpoint, Cosigner, open_cosigned_checkpoint, parse_cosigner_vkey
from .errors import InvalidInput, VerificationError

__all__ = ["Policy", "PolicyWitness", "PolicyGroup", "PolicyCheck", "parse_policy", "check_checkpoint"]

_ALLOWED = re.compile(rb"[^\x09\x0a\x20-\x7e\x80-\xff]")
_WS = re.compile(r"[ \t]+")
NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyWitness:
    name: str
    cosigner: Cosigner
    vkey: str
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyGroup:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    logs: tuple[NoteVerifier, ...]
    log_urls: tuple[str | None, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: Mapping[str, PolicyGroup]
    quorum: str
    text: str = field(default="", compare=False)

    @property
    def cosigners(self) -> list[Cosigner]:
        return [w.cosigner for w in self.witnesses]

    def witness_named(self, name: str) -> PolicyWitness | None:
        return next((w for w in self.witnesses if w.name == name), None)

    def satisfied(self, witnessed: AbstractSet[str]) -> bool:
        """Whether the policy witnesses named in ``witnessed`` (policy names) meet the quorum."""
        return self._meets(self.quorum, witnessed)

    def _meets(self, name: str, witnessed: AbstractSet[str]) -> bool:
        if name == NONE:
            return True
        group = self.groups.get(name)
        if group is None:
            return name in witnessed
        return sum(self._meets(m, witnessed) for m in group.members) >= group.threshold

    def describe(self) -> str:
        if self.quorum == NONE:
            return "no witness required"
        group = self.groups.get(self.quorum)
        if group is None:
            return f"witness {self.quorum} required"
        return f"{group.threshold} of {len(group.members)} ({', '.join(group.members)}) required"


def _refuse(lineno: int, message: str) -> InvalidInput:
    return InvalidInput(f"policy line {lineno}: {message}", code="invalid_policy")


def parse_policy(data: str | bytes) -> Policy:
    raw = data.encode() if isinstance(data, str) else bytes(data)
    bad = _ALLOWED.search(raw)
    if bad:
        raise InvalidInput(f"policy holds a forbidden control character 0x{bad.group()[0]:02x}", code="invalid_policy")
    text = raw.decode("utf-8", errors="surrogateescape")
    logs: list[NoteVerifier] = []
    log_urls: list[str | None] = []
    witnesses: list[PolicyWitness] = []
    groups: dict[str, PolicyGroup] = {}
    names: set[str] = set()
    keys: set[bytes] = set()
    quorum: str | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        words = _WS.split(line.strip(" \t"))
        if not words[0] or words[0].startswith("#"):
            continue
        kind, args = words[0], words[1:]
        try:
            if kind == "log" and len(args) in (1, 2):
                log = parse_vkey(args[0])
                if log.public_key in keys:
                    raise _refuse(lineno, "duplicate log key")
                keys.add(log.public_key)
                logs.append(log)
                log_urls.append(args[1] if len(args) == 2 else None)
            elif kind == "witness" and len(args) in (2, 3):
                name, cosigner = args[0], parse_cosigner_vkey(args[1])
                if name in names or name == NONE:
                    raise _refuse(lineno, f"name {name!r} is already defined")
                if cosigner.public_key in keys:
                    raise _refuse(lineno, "duplicate witness key")
                keys.add(cosigner.public_key)
                names.add(name)
                witnesses.append(PolicyWitness(name=name, cosigner=cosigner, vkey=args[1],
                                               url=args[2] if len(args) == 3 else None))
            elif kind == "group" and len(args) >= 3:
                name, k, members = args[0], args[1], tuple(args[2:])
                if name in names or name == NONE:
                    raise _refuse(lineno, f"name {name!r} is already defined")
                for m in members:
                    if m not in names:
                        raise _refuse(lineno, f"group member {m!r} is not defined on an earlier line")
                if len(set(members)) != len(members):
                    raise _refuse(lineno, "a group lists each member at most once")
                n = len(members)
                threshold = n if k == "all" else 1 if k == "any" else int(k) if re.fullmatch(r"[1-9][0-9]*", k) else 0
                if not 1 <= threshold <= n:
                    raise _refuse(lineno, "a group threshold is all, any or a number from 1 to its member count")
                names.add(name)
                groups[name] = PolicyGroup(name=name, threshold=threshold, members=members)
            elif kind == "quorum" and len(args) == 1:
                if quorum is not None:
                    raise _refuse(lineno, "a policy has exactly one quorum line")
                if args[0] != NONE and args[0] not in names:
                    raise _refuse(lineno, f"quorum {args[0]!r} is not defined on an earlier line")
                quorum = args[0]
            else:
                raise _refuse(lineno, f"cannot read {kind!r} line")
        except VerificationError as exc:
            raise _refuse(lineno, exc.message) from exc
    if quorum is None:
        raise InvalidInput("the policy has no quorum line", code="invalid_policy")
    return Policy(logs=tuple(logs), log_urls=tuple(log_urls), witnesses=tuple(witnesses), groups=groups,
                  quorum=quorum, text=text)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyCheck:
    """A checkpoint verified under a policy: who cosigned it, and whether that meets the quorum."""

    cosigned: CosignedCheckpoint
    witnessed_by: tuple[str, ...]  # policy witness names
    total: int
    quorum_met: bool
    quorum: str

    def summary(self) -> str:
        return f"{len(self.witnessed_by)} of {self.total} witnesses"


def check_checkpoint(note: str | bytes, policy: Policy, *, origin: str | None = None,
                     log: NoteVerifier | None = None) -> PolicyCheck:
    """Verify a checkpoint under ``policy``: signed by one of its logs (or ``log``), every cosignature by a
    policy witness verifies, and report whether the quorum is met. Raises VerificationError when the log
    signature or any known cosignature fails."""
    logs: Sequence[NoteVerifier] = [log] if log is not None else policy.logs
    if origin is not None:
        logs = [v for v in logs if v.name == origin]
    last: VerificationError | None = None
    for candidate in logs:
        try:
            cc = open_cosigned_checkpoint(note, candidate, policy.cosigners, origin=origin)
        except VerificationError as exc:
            last = exc
            continue
        by_name = {w.cosigner.name: w.name for w in policy.witnesses}
        witnessed = tuple(by_name[n] for n in cc.cosigners if n in by_name)
        return PolicyCheck(cosigned=cc, witnessed_by=witnessed, total=len(policy.witnesses),
                           quorum_met=policy.satisfied(set(witnessed)), quorum=policy.describe())
    raise last or VerificationError("the policy lists no log for this checkpoint's origin")
