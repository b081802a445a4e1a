"""A hypothesis state machine over a real Ledger on SQLite.

It registers parties, commissions items, ships and receives them, and now and then replays an envelope
(a duplicate) or signs with a key that is not the actor's. After every step the ledger must agree with a
plain model: the tree holds exactly the accepted envelopes in order, the latest signed checkpoint covers
them (root recomputed here with the RFC 6962 recursion), every inclusion proof verifies against it, every
earlier checkpoint is consistent with it, and the full audit passes.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import sys
import tempfile
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.conftest import T0, fixed_key
from tracker import merkle
from tracker.checkpoint import parse_vkey, verify_checkpoint
from tracker.dsse import Envelope
from tracker.errors import Rejected
from tracker.ledger import Ledger
from tracker.signing import new_statement, party_statement, sign_statement
from tracker.statements import format_time
from tracker.store import open_store

ORIGIN = "waybill.test/machine"
LEDGER_KEY = fixed_key("machine-ledger")
ADMIN_KEY = fixed_key("machine-admin")
GTIN = "09506000134352"
LOC = {"name": "Somewhere", "country": "DE"}
NOT_BEFORE = format_time(T0)
ROLES = ["manufacturer", "exporter", "warehouse", "courier", "retailer", "customs"]
SHIPPERS = {"manufacturer", "exporter", "warehouse", "courier", "retailer"}
MAX_LEAVES = 32
# SQLite runs with synchronous=FULL: on a RAM disk the fsyncs cost nothing and the machine stays fast.
# Durability is not what this test is about.
TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def reference_root(leaf_data: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, recursively, straight from the definition."""
    n = len(leaf_data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaf_data[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaf_data[:k]) + reference_root(leaf_data[k:])).digest()


_TEMPLATE: list[str] = []


def _build_template() -> str:
    tmpl = tempfile.mkdtemp(prefix="waybill-machine-template-", dir=TMP_ROOT)
    store = open_store(f"sqlite:///{tmpl}/ledger.db")
    Ledger.create(store, origin=ORIGIN, ledger_key=LEDGER_KEY, admin_key=ADMIN_KEY, now=T0)
    store.close()
    _TEMPLATE[:] = [f"{tmpl}/ledger.db"]
    return tmpl


@pytest.fixture(scope="module", autouse=True)
def ledger_template():
    """One migrated ledger (schema + genesis entry) per module run, removed afterwards."""
    tmpl = _build_template()
    yield
    _TEMPLATE.clear()
    shutil.rmtree(tmpl, ignore_errors=True)


def fresh_ledger_file(directory: str) -> str:
    """A new ledger in ``directory``, copied from the template: running the migrations for every example
    would cost more than a whole short run of the machine."""
    if not _TEMPLATE:  # run outside pytest (e.g. run_state_machine_as_test from a script)
        atexit.register(shutil.rmtree, _build_template(), True)
    path = os.path.join(directory, "ledger.db")
    for suffix in ("", "-wal"):
        if os.path.exists(_TEMPLATE[0] + suffix):
            shutil.copyfile(_TEMPLATE[0] + suffix, path + suffix)
    return path


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="waybill-machine-", dir=TMP_ROOT)
        self.store = open_store(f"sqlite:///{fresh_ledger_file(self.tmp)}", create=False)
        self.ledger = Ledger(self.store, signing_key=LEDGER_KEY)
        assert self.ledger.origin == ORIGIN and self.ledger.size() == 1
        self.verifier = parse_vkey(self.ledger.vkey)
        self.clock = T0
        with self.store.read() as txn:
            genesis = list(txn.iter_entries())
        assert len(genesis) == 1 and genesis[0].type == "party"
        self.leaves: list[bytes] = [genesis[0].leaf_data]          # leaf data in log order
        self.accepted: list[tuple[Envelope, str, int]] = []        # (envelope, event id, leaf index)
        self.roles: dict[str, str] = {}                             # party id -> its one role
        self.keys = {"admin": ADMIN_KEY}
        self.holder: dict[str, str] = {}                            # item -> party holding it
        self.heads: dict[str, str] = {}                             # item -> latest event id
        self.in_transit: dict[str, tuple[str, str, str, list[str]]] = {}  # ship id -> (from, to, id, items)
        self.serial = 0
        self.rejections = self.replays = self.received = 0
        cp = self.ledger.verified_checkpoint()
        self.checkpoints: list[tuple[int, bytes]] = [(cp.size, cp.root_hash)]
        self.proven_size = 0
        self.growths = 0

    def teardown(self) -> None:
        try:
            event(f"log size {len(self.leaves) // 10 * 10}+")
            event(f"receives: {'some' if self.received else 'none'}")
            event(f"refusals: {'some' if self.rejections else 'none'}; "
                  f"duplicates: {'some' if self.replays else 'none'}")
            # The end state, exhaustively: every entry, every earlier checkpoint. Skipped when a step
            # already failed (teardown runs in a `finally`), so that failure is the one reported.
            if sys.exc_info()[1] is None:
                self.check_proofs(stride=1)
                self.check_audit()
        finally:
            self.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------------

    def tick(self) -> None:
        self.clock += timedelta(minutes=1)

    @property
    def now(self):
        return self.clock + timedelta(seconds=1)

    def append_new(self, env: Envelope) -> str:
        result = self.ledger.append(env, now=self.now)
        assert result.created is True
        assert result.leaf_index == len(self.leaves)
        assert result.event_id == env.event_id
        self.leaves.append(env.leaf_data())
        self.accepted.append((env, result.event_id, result.leaf_index))
        cp = self.ledger.verified_checkpoint()
        assert cp.size == len(self.leaves)  # one checkpoint per commit: it covers what was acknowledged
        self.checkpoints.append((cp.size, cp.root_hash))
        return result.event_id

    def room(self) -> bool:
        """Logs stop growing at about 32 entries: the invariants' cost grows with the log."""
        return len(self.leaves) < MAX_LEAVES

    def parties_with(self, roles: set[str]) -> list[str]:
        return sorted(p for p, r in self.roles.items() if r in roles)

    def shippable(self) -> dict[str, list[str]]:
        moving = {k for (_, _, _, items) in self.in_transit.values() for k in items}
        out: dict[str, list[str]] = {}
        for item, who in sorted(self.holder.items()):
            if item not in moving and self.roles.get(who) in SHIPPERS:
                out.setdefault(who, []).append(item)
        return out

    # --- rules ---------------------------------------------------------------------------------

    @initialize()
    def cast(self) -> None:
        """A manufacturer, a courier, a retailer and customs: enough for every other rule to be possible."""
        for role, country in (("manufacturer", "DE"), ("courier", "HK"), ("retailer", "FR"), ("customs", "HK")):
            self.register_party(role, country)

    @precondition(lambda self: self.room())
    @rule(role=st.sampled_from(ROLES), country=st.sampled_from(["DE", "HK", "FR", "US"]))
    def register_party(self, role: str, country: str) -> None:
        self.tick()
        pid = f"p{len(self.roles)}-{role}"
        key = fixed_key(f"machine:{pid}")
        doc = party_statement(admin="admin", time=self.clock, location=LOC, party_id=pid, name=pid.upper(),
                              country=country, roles=[role], keys=[{"public_key": key.public_key_b64,
                                                                    "not_before": NOT_BEFORE}])
        self.append_new(sign_statement(doc, ADMIN_KEY))
        self.roles[pid] = role
        self.keys[pid] = key
        assert self.ledger.party(pid).roles == (role,)

    @precondition(lambda self: self.room())
    @rule(data=st.data(), count=st.integers(1, 3))
    def commission(self, data: st.DataObject, count: int) -> None:
        self.tick()
        maker = data.draw(st.sampled_from(self.parties_with({"manufacturer"})), label="maker")
        items = []
        for _ in range(count):
            self.serial += 1
            items.append(f"01/{GTIN}/21/S{self.serial}")
        doc = new_statement("commission", actor=maker, time=self.clock, location=LOC, items=items,
                            product={"gtin": GTIN, "name": "Widget"})
        eid = self.append_new(sign_statement(doc, self.keys[maker]))
        for k in items:
            self.holder[k] = maker
            self.heads[k] = eid

    @precondition(lambda self: self.room() and bool(self.shippable()))
    @rule(data=st.data())
    def ship(self, data: st.DataObject) -> None:
        self.tick()
        stock = self.shippable()
        sender = data.draw(st.sampled_from(sorted(stock)), label="sender")
        items = data.draw(st.lists(st.sampled_from(stock[sender]), min_size=1, max_size=3, unique=True),
                          label="items")
        to = data.draw(st.sampled_from([p for p in sorted(self.roles) if p != sender]), label="to")
        doc = new_statement("ship", actor=sender, time=self.clock, location=LOC,
                            prev={k: self.heads[k] for k in items}, items=items, to=to)
        eid = self.append_new(sign_statement(doc, self.keys[sender]))
        for k in items:
            self.heads[k] = eid
        self.in_transit[eid] = (sender, to, eid, items)

    @precondition(lambda self: bool(self.in_transit))
    @rule(data=st.data())
    def receive(self, data: st.DataObject) -> None:
        self.tick()
        ship_id = data.draw(st.sampled_from(sorted(self.in_transit)), label="ship")
        sender, to, _, items = self.in_transit.pop(ship_id)
        doc = new_statement("receive", actor=to, time=self.clock, location=LOC,
                            prev={k: self.heads[k] for k in items}, items=items, from_=sender, ship=ship_id)
        eid = self.append_new(sign_statement(doc, self.keys[to]))
        self.received += 1
        for k in items:
            self.heads[k] = eid
            self.holder[k] = to

    @precondition(lambda self: self.room())
    @rule(data=st.data())
    def journey_in_one_batch(self, data: st.DataObject) -> None:
        """Commission, ship and receive posted as one batch: later envelopes build on earlier ones."""
        self.tick()
        maker = data.draw(st.sampled_from(self.parties_with({"manufacturer"})), label="maker")
        to = data.draw(st.sampled_from([p for p in sorted(self.roles) if p != maker]), label="to")
        self.serial += 1
        item = f"01/{GTIN}/21/J{self.serial}"
        commission = sign_statement(new_statement("commission", actor=maker, time=self.clock, location=LOC,
                                                  items=[item], product={"gtin": GTIN, "name": "Widget"}),
                                    self.keys[maker])
        ship = sign_statement(new_statement("ship", actor=maker, time=self.clock, location=LOC,
                                            prev={item: commission.event_id}, items=[item], to=to), self.keys[maker])
        receive = sign_statement(new_statement("receive", actor=to, time=self.clock, location=LOC,
                                               prev={item: ship.event_id}, items=[item], from_=maker,
                                               ship=ship.event_id), self.keys[to])
        envs = [commission, ship, receive]
        if data.draw(st.booleans(), label="with a replay inside"):
            envs.insert(2, ship)
        results = self.ledger.append_batch(envs, now=self.now)
        first = len(self.leaves)
        assert [(r.event_id, r.leaf_index, r.created) for r in results if r.created] == \
            [(e.event_id, first + i, True) for i, e in enumerate([commission, ship, receive])]
        assert all(r.created is False and r.leaf_index == first + 1 for r in results if not r.created)
        for i, env in enumerate([commission, ship, receive]):
            self.leaves.append(env.leaf_data())
            self.accepted.append((env, env.event_id, first + i))
        cp = self.ledger.verified_checkpoint()
        assert cp.size == len(self.leaves)  # one checkpoint for the whole batch
        self.checkpoints.append((cp.size, cp.root_hash))
        self.holder[item], self.heads[item] = to, receive.event_id
        self.received += 1

    @precondition(lambda self: bool(self.accepted))
    @rule(data=st.data(), as_batch=st.booleans())
    def duplicate(self, data: st.DataObject, as_batch: bool) -> None:
        env, eid, index = data.draw(st.sampled_from(self.accepted), label="replayed")
        size = self.ledger.size()
        before = self.ledger.checkpoint()
        wire = data.draw(st.sampled_from([env, env.to_json(), env.leaf_data()]), label="form")
        if as_batch:
            results = self.ledger.append_batch([wire, wire], now=self.now + timedelta(hours=1))
        else:
            results = [self.ledger.append(wire, now=self.now + timedelta(hours=1))]
        for r in results:
            assert (r.event_id, r.leaf_index, r.created) == (eid, index, False)
        assert self.ledger.size() == size
        assert self.ledger.checkpoint() == before  # nothing new was signed
        self.replays += 1

    @rule(data=st.data())
    def signed_by_the_wrong_key(self, data: st.DataObject) -> None:
        self.tick()
        actor = data.draw(st.sampled_from(sorted(self.keys)), label="actor")
        others = [f"intruder-{self.serial}"] + [p for p in sorted(self.keys) if p != actor]
        wrong = data.draw(st.sampled_from(others), label="wrong key of")
        key = self.keys.get(wrong) or fixed_key(f"machine:{wrong}")
        if actor == "admin":
            doc = party_statement(admin="admin", time=self.clock, location=LOC, party_id="mallory", name="Mallory",
                                  country="ZZ", roles=["admin"],
                                  keys=[{"public_key": key.public_key_b64, "not_before": NOT_BEFORE}])
        else:
            self.serial += 1
            doc = new_statement("commission", actor=actor, time=self.clock, location=LOC,
                                items=[f"01/{GTIN}/21/X{self.serial}"], product={"gtin": GTIN, "name": "Fake"})
        size, before = self.ledger.size(), self.ledger.checkpoint()
        try:
            self.ledger.append(sign_statement(doc, key), now=self.now)
        except Rejected as exc:
            assert exc.code == "unknown_key", exc.code
            assert exc.field == "signatures"
        else:
            raise AssertionError(f"an envelope for {actor} signed by {wrong}'s key was accepted")
        assert self.ledger.size() == size and self.ledger.checkpoint() == before
        self.rejections += 1

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def tree_holds_exactly_the_accepted_envelopes(self) -> None:
        assert self.ledger.size() == len(self.leaves) == 1 + len(self.accepted)
        with self.store.read() as txn:
            stored = [e.leaf_data for e in txn.iter_entries()]
        assert stored == self.leaves

    @invariant()
    def latest_checkpoint_is_signed_and_covers_everything(self) -> None:
        cp = verify_checkpoint(self.ledger.checkpoint(), self.verifier, origin=ORIGIN)
        assert cp.size == len(self.leaves)
        assert cp.root_hash == reference_root(self.leaves)
        assert self.checkpoints[-1] == (cp.size, cp.root_hash)

    def check_proofs(self, *, stride: int, phase: int = 0) -> None:
        """Inclusion proofs against the latest signed checkpoint and consistency proofs from earlier
        checkpoints to it: for every entry and checkpoint when ``stride`` is 1; otherwise for the newest
        entries, the first and last ones and every ``stride``-th one starting at ``phase``."""
        cp = self.ledger.verified_checkpoint()
        n, root_n = self.checkpoints[-1]
        assert (n, root_n) == (cp.size, cp.root_hash)
        fresh = set(range(self.proven_size, n))
        for index, data in enumerate(self.leaves):
            if stride > 1 and index not in fresh and index not in (0, n - 1) and (index + phase) % stride:
                continue
            got_index, size, proof = self.ledger.inclusion_proof(leaf_index=index)
            assert (got_index, size) == (index, n)
            merkle.verify_inclusion(merkle.leaf_hash(data), index, size, proof, root_n)
        last = len(self.checkpoints) - 1
        for j, (m, root_m) in enumerate(self.checkpoints):
            if stride > 1 and j not in (0, last - 1, last) and (j + phase) % stride:
                continue
            merkle.verify_consistency(m, n, root_m, root_n, self.ledger.consistency_proof(m, n))
            if stride == 1 or j == last - 1:
                # a proof at that earlier size checks out against that earlier signed root
                _, size, proof = self.ledger.inclusion_proof(leaf_index=m - 1, tree_size=m)
                merkle.verify_inclusion(merkle.leaf_hash(self.leaves[m - 1]), m - 1, size, proof, root_m)

    @invariant()
    def proofs_verify_and_audit_passes(self) -> None:
        """Runs when the log grew (rules that change nothing assert that the checkpoint did not move).
        Proof checks rotate through the entries and checkpoints (every 5th, shifted each time, plus the
        new ones), so every entry is proven at many sizes; teardown proves all of them and audits at the
        end. (Exhaustive checks after every step cost O(n²) SQL round trips per run.)"""
        if self.proven_size == len(self.leaves):
            return
        self.growths += 1
        self.check_proofs(stride=5, phase=self.growths)
        for env, eid, index in self.accepted[-2:]:
            assert self.ledger.inclusion_proof(event_id=eid)[0] == index
            entry, _ = self.ledger.get_event(eid)
            assert entry.leaf_index == index and entry.leaf_data == env.leaf_data()
        if self.growths % 3 == 0:  # the audit re-verifies the whole log: O(n), so every 3rd time
            self.check_audit()
        self.proven_size = len(self.leaves)

    def check_audit(self) -> None:
        report = self.ledger.audit()
        assert report.entries == len(self.leaves)
        assert report.root_hash == self.checkpoints[-1][1]
        assert report.parties == 1 + len(self.roles)


LedgerMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerMachine = LedgerMachine.TestCase
