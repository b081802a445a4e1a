"""Declarative supply-chain scenarios (``fixtures/scenarios/*.toml``) and the network builder that plays them
into a ledger. Tests load them to check verdicts; the demo reuses them to seed counterfeit cases.

A scenario names parties and a list of steps; each step is a statement (``type``, ``actor``, fields), an
admin action (``revoke``) or consumer scans (``scan``: ``networks`` distinct networks scan ``key``, default the
unit under test). ``ref`` names a step's event so later steps can point at it (``ship = "@s1"``,
``prev = {"$ITEM" = "@c1"}``). ``$N`` in keys is replaced by an instance suffix, ``$ITEM`` by the unit under
test, ``$SSCCn`` by a container key. Without ``prev`` a step links to each key's current head, as an honest
device would. A step may carry ``check = [{key, verdict, holder?}]``: what a lookup must answer right after it,
so a scenario pins the verdict at every stage of a journey, not only at its end.
"""
from __future__ import annotations

import base64
import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence

from .dsse import Envelope
from .errors import InvalidInput, TrackerError
from .identifiers import gs1_check_digit
from .keys import KeyPair, keypair_from_seed
from .ledger import AppendResult, Ledger
from .provenance import head
from .signing import new_statement, party_statement, sign_statement
from .scans import ScanPolicy, ScanRecorder
from .statements import NO_PREV_TYPES, format_time

__all__ = ["make_sscc", "Network", "Scenario", "StageCheck", "load_scenario", "load_scenarios", "party_key",
           "SCENARIO_DIR"]

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"


def party_key(party_id: str, n: int = 0, *, seed: str = "waybill-demo") -> KeyPair:
    """Deterministic per-party keys, so a scenario or demo built twice signs the same bytes."""
    return keypair_from_seed(hashlib.sha256(f"{seed}:{party_id}:{n}".encode()).digest())


def make_sscc(label: str, *, prefix: str = "0950600") -> str:
    """A valid SSCC derived from ``label``: extension digit 0, our company prefix, a serial, check digit."""
    serial = str(int(hashlib.sha256(label.encode()).hexdigest(), 16))[: 16 - len(prefix)]
    body = "0" + prefix + serial.zfill(16 - len(prefix))
    return body + str(gs1_check_digit(body))


class Network:
    """A ledger plus the parties (and their device keys) acting on it, with a simulated clock."""

    def __init__(self, ledger: Ledger, *, admin_key: KeyPair, start: datetime, seed: str = "waybill-demo") -> None:
        self.ledger = ledger
        self.admin_key = admin_key
        self.clock = start
        self.seed = seed
        self.keys: dict[str, list[KeyPair]] = {}
        self.parties: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.scans: ScanRecorder | None = None

    def scan(self, key: str, *, networks: int, per_network: int = 1, policy: ScanPolicy | None = None) -> None:
        """Consumers on ``networks`` distinct networks scan ``key`` now (by the network's clock)."""
        if self.scans is None:
            self.scans = ScanRecorder(self.ledger.store, policy=policy, flush_seconds=0.0)
        for n in range(networks):
            for _ in range(per_network):
                self.scans.record(key, f"198.{51 + n // 250}.{n % 250}.7", now=self.clock)

    def tick(self, hours: float = 1.0) -> datetime:
        self.clock += timedelta(hours=hours)
        return self.clock

    def _now(self, at: datetime) -> datetime:
        return max(at, self.clock) + timedelta(minutes=1)

    def add_party(self, pid: str, *, name: str, country: str, roles: Sequence[str],
                  gs1_prefixes: Sequence[str] = (), devices: int = 1,
                  sites: Sequence[Mapping[str, str]] = ()) -> KeyPair:
        """Register a party (idempotent for the same definition); returns its first device key."""
        if pid in self.parties:
            return self.keys[pid][0]
        try:
            existing = self.ledger.party(pid)
        except TrackerError:
            existing = None
        keys = [party_key(pid, n, seed=self.seed) for n in range(devices)]
        self.keys[pid] = keys
        self.parties[pid] = {"name": name, "country": country, "roles": list(roles),
                             "gs1_prefixes": list(gs1_prefixes), "sites": [dict(x) for x in sites]}
        if existing is not None:
            # A party already in the ledger (a demo rebuilt over its own home) keeps the keys it has.
            self.parties[pid]["key_records"] = [{"public_key": base64.b64encode(k.public_key).decode(),
                                                 "not_before": format_time(k.not_before),
                                                 **({"revoked_at": format_time(k.revoked_at)} if k.revoked_at else {})}
                                                for k in existing.keys]
            return keys[0]
        at = self.clock
        records = [{"public_key": k.public_key_b64, "not_before": format_time(at - timedelta(days=365))} for k in keys]
        self.parties[pid]["key_records"] = records
        self._party(pid, at)
        return keys[0]

    def _party(self, pid: str, at: datetime) -> AppendResult:
        p = self.parties[pid]
        doc = party_statement(admin="admin", time=at, location={"name": "Registry", "country": "ZZ"}, party_id=pid,
                              name=p["name"], country=p["country"], roles=p["roles"], keys=p["key_records"],
                              gs1_prefixes=p["gs1_prefixes"], sites=p["sites"])
        return self.ledger.append(sign_statement(doc, self.admin_key), now=self._now(at))

    def revoke(self, pid: str, *, revoked_at: datetime, device: int = 0) -> AppendResult:
        self.parties[pid]["key_records"][device]["revoked_at"] = format_time(revoked_at)
        return self._party(pid, self.clock)

    def location(self, pid: str) -> dict[str, str]:
        p = self.parties[pid]
        return {"name": p["name"], "country": p["country"]}

    def statement(self, stype: str, actor: str, *, at: datetime | None = None, prev: Mapping[str, str] | None = None,
                  location: Mapping[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        at = at or self.tick()
        if stype not in NO_PREV_TYPES and prev is None:
            touched = list(fields.get("items", ())) + ([fields["container"]] if fields.get("container") else [])
            prev = {k: h for k in touched if (h := head(self.ledger, k)) is not None}
        return new_statement(stype, actor=actor, time=at, location=location or self.location(actor),
                             prev=prev if stype not in NO_PREV_TYPES else None, **fields)

    def sign(self, doc: Mapping[str, Any], actor: str, *, device: int = 0, key: KeyPair | None = None) -> Envelope:
        return sign_statement(doc, key or self.keys[actor][device])

    def record(self, stype: str, actor: str, *, at: datetime | None = None, device: int = 0,
               key: KeyPair | None = None, ref: str | None = None, **fields: Any) -> AppendResult:
        doc = self.statement(stype, actor, at=at, **fields)
        env = self.sign(doc, actor, device=device, key=key)
        result = self.ledger.append(env, now=self._now(datetime.fromisoformat(doc["time"].replace("Z", "+00:00"))))
        if ref:
            self.refs[ref] = result.event_id
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class StageCheck:
    """What a lookup answered right after a step, beside what the scenario expects there."""

    step: int
    key: str
    expected: str
    verdict: str
    codes: tuple[str, ...]
    expected_holder: str | None = None
    holder: str | None = None
    check_holder: bool = False

    @property
    def ok(self) -> bool:
        return self.verdict == self.expected and (not self.check_holder or self.holder == self.expected_holder)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    description: str
    item: str
    verdict: str
    codes: tuple[str, ...]
    parties: tuple[Mapping[str, Any], ...]
    steps: tuple[Mapping[str, Any], ...]
    kind: str = "counterfeit"
    path: Path | None = None

    def _sub(self, value: Any, *, n: str, local: Mapping[str, str]) -> Any:
        if isinstance(value, str):
            value = re.sub(r"\$SSCC(\d)", lambda m: "00/" + make_sscc(f"{self.name}:{n}:{m.group(1)}"), value)
            value = value.replace("$ITEM", self.item_key(n)).replace("$N", n)
            if value.startswith("@"):
                if value[1:] not in local:
                    raise InvalidInput(f"scenario {self.name}: unknown ref {value}")
                return local[value[1:]]
            return value
        if isinstance(value, list):
            return [self._sub(v, n=n, local=local) for v in value]
        if isinstance(value, dict):
            return {self._sub(k, n=n, local=local): self._sub(v, n=n, local=local) for k, v in value.items()}
        return value

    def item_key(self, n: str = "") -> str:
        """The unit under test: an item key, or a container key when ``item`` names ``$SSCCn``."""
        key = self.item.replace("$N", n)
        return re.sub(r"\$SSCC(\d)", lambda m: "00/" + make_sscc(f"{self.name}:{n}:{m.group(1)}"), key)

    def play(self, net: Network, *, n: str = "") -> str:
        """Play the scenario into ``net``'s ledger with instance suffix ``n``; returns the unit's key."""
        return self.play_checked(net, n=n)[0]

    def play_checked(self, net: Network, *, n: str = "") -> tuple[str, list[StageCheck]]:
        """Play the scenario; returns the unit's key and the stage checks its steps asked for."""
        from .provenance import lookup  # the judgement, for stage checks

        item = self.item_key(n)
        for p in self.parties:
            net.add_party(p["id"], name=p["name"], country=p["country"], roles=p["roles"],
                          gs1_prefixes=p.get("gs1_prefixes", ()), devices=p.get("devices", 1),
                          sites=p.get("sites", ()))
        local: dict[str, str] = {}
        checks: list[StageCheck] = []
        for number, raw in enumerate(self.steps):
            step = dict(raw)
            hours = step.pop("hours", 1.0)
            ref = step.pop("ref", None)
            stype = step.pop("type")
            wanted = step.pop("check", [])
            if stype == "revoke":
                net.tick(hours)
                net.revoke(step["party"], revoked_at=net.clock - timedelta(hours=float(step.get("hours_ago", 0))),
                           device=step.get("device", 0))
            elif stype == "scan":
                net.tick(hours)
                net.scan(self._sub(step.get("key", "$ITEM"), n=n, local=local), networks=int(step["networks"]),
                         per_network=int(step.get("per_network", 1)))
            else:
                result = self._record(net, stype, step, hours=hours, n=n, local=local)
                if ref:
                    local[ref] = result.event_id
            for want in wanted:
                key = self._sub(want.get("key", "$ITEM"), n=n, local=local)
                answer = lookup(net.ledger, key, now=net.clock)
                checks.append(StageCheck(step=number, key=key, expected=want["verdict"], verdict=answer.verdict,
                                         codes=tuple(sorted({r.code for r in answer.reasons})),
                                         expected_holder=want.get("holder"), holder=answer.holder,
                                         check_holder="holder" in want))
        return item, checks

    def _record(self, net: Network, stype: str, step: dict[str, Any], *, hours: float, n: str,
                local: Mapping[str, str]) -> AppendResult:
        actor = step.pop("actor")
        forge = step.pop("forge", None)
        device = step.pop("device", 0)
        fields = {k: self._sub(v, n=n, local=local) for k, v in step.items()}
        if "from" in fields:
            fields["from_"] = fields.pop("from")
        doc = net.statement(stype, actor, at=net.tick(hours), **fields)
        env = net.sign(doc, actor, device=device)
        now = net._now(net.clock)
        if forge == "bad_signature":
            sig = env.signatures[0]
            bad = bytes([sig.sig[0] ^ 1]) + sig.sig[1:]
            env = Envelope(payload_type=env.payload_type, payload=env.payload,
                           signatures=(type(sig)(keyid=sig.keyid, sig=bad),))
            result = net.ledger.import_envelopes([env], now=now)[0]
        elif forge == "import":
            result = net.ledger.import_envelopes([env], now=now)[0]
        elif forge is None:
            result = net.ledger.append(env, now=now)
        else:
            raise InvalidInput(f"scenario {self.name}: unknown forge {forge!r}")
        if isinstance(result, TrackerError):
            raise result
        return result


def load_scenario(path: Path) -> Scenario:
    try:
        doc = tomllib.loads(Path(path).read_text())
        expect = doc.get("expect", {})
        return Scenario(name=doc.get("name", Path(path).stem), description=doc.get("description", ""),
                        item=doc["item"], verdict=expect["verdict"], codes=tuple(expect.get("codes", ())),
                        parties=tuple(doc.get("parties", ())), steps=tuple(doc.get("steps", ())),
                        kind=doc.get("kind", "counterfeit"), path=Path(path))
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"scenario file {path} is malformed: {exc}") from exc


def load_scenarios(directory: Path | None = None) -> list[Scenario]:
    directory = directory or SCENARIO_DIR
    return [load_scenario(p) for p in sorted(Path(directory).glob("*.toml"))]
