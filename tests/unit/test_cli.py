"""The `tracker` command line (SPEC §6), driven the way an operator drives it: through click's CliRunner
against a real WAYBILL_HOME in a temporary directory (and, for a smoke test, as a real subprocess).

What is checked is what an operator sees: exit codes, one-line refusals on stderr, files and their modes,
the ledger's size before and after a refused command, and the JSON a scanner or partner system reads.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracker.checkpoint import parse_vkey, verify_checkpoint
from tracker.cli import cli
from tracker.errors import VerificationError
from tracker.keys import generate_keypair, read_key_file, write_key_file

GTIN = "09506000134352"
BAD_GTIN = "09506000134353"  # wrong check digit
SSCC = "009506000134352008"
CORE_COMMANDS = ["init", "keygen", "party", "record", "lookup", "verify", "checkpoint", "demo", "import"]
ANSWER_KEYS = {"item", "gtin", "serial", "product", "verdict", "reasons", "holder", "path", "checkpoint"}


def item(serial: str, gtin: str = GTIN) -> str:
    return f"01/{gtin}/21/{serial}"


class Tracker:
    """Runs `tracker ARGS...` in-process against one WAYBILL_HOME."""

    def __init__(self, home: Path, work: Path) -> None:
        self.home = home
        self.work = work
        self.vkey: str | None = None

    def __call__(self, *args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        e: dict[str, str | None] = {"WAYBILL_HOME": str(self.home), "WAYBILL_DATABASE_URL": None,
                                    "WAYBILL_KEY_PASSPHRASE": None}
        e.update(env or {})
        result = CliRunner().invoke(cli, [str(a) for a in args], env=e, input=input)
        # A crash (traceback) must never pass for a refusal: CliRunner reports crashes as exit code 1.
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"`tracker {' '.join(map(str, args))}` crashed: {result.exception!r}\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}") from result.exception
        return result

    def ok(self, *args: str, **kw) -> Result:
        result = self(*args, **kw)
        assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr)
        return result

    # --- what the operator can inspect --------------------------------------------------------------
    @property
    def db(self) -> Path:
        return self.home / "ledger.db"

    def size(self) -> tuple[int, int]:
        """(entries, largest checkpoint size): both must stay put when a command is refused."""
        with sqlite3.connect(self.db) as conn:
            entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            cp = conn.execute("SELECT MAX(size) FROM checkpoints").fetchone()[0]
        return entries, cp

    def init(self, *extra: str) -> Result:
        result = self.ok("init", *extra)
        m = re.search(r"^verifier key: (\S+)$", result.stdout, re.M)
        if m:
            self.vkey = m.group(1)
        return result

    def keygen(self, name: str, *extra: str, env=None) -> Path:
        path = self.work / f"{name}.key"
        self.ok("keygen", "--out", path, *extra, env=env)
        return path

    @property
    def admin_key(self) -> Path:
        return self.home / "keys" / "admin.key"

    def add_party(self, pid: str, name: str, country: str, role: str, *extra: str, key: Path | None = None) -> Path:
        key = key or self.keygen(pid)
        self.ok("party", "add", pid, "--name", name, "--country", country, "--role", role, "--key", key,
                "--admin-key", self.admin_key, *extra)
        return key

    def record(self, stype: str, key: Path, *args: str, env=None) -> dict:
        result = self.ok("record", stype, "--key", key, *args, env=env)
        return json.loads(result.stdout)

    def lookup_json(self, *code: str) -> tuple[int, dict]:
        result = self("lookup", "--json", *code)
        assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
        return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def tracker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tracker:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    # load_config reads os.environ directly: point it at the temporary home as well.
    monkeypatch.setenv("WAYBILL_HOME", str(home))
    for var in ("WAYBILL_DATABASE_URL", "WAYBILL_KEY_PASSPHRASE", "WAYBILL_ORIGIN", "WAYBILL_RESOLVER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(work)
    return Tracker(home, work)


class Chain:
    """An initialised ledger with a manufacturer, an exporter (CN), customs and a retailer (DE)."""

    PARTIES = {"acme": ("Acme Manufacturing", "CN", "manufacturer", ("--gs1-prefix", "950600")),
               "pearl": ("Pearl River Export", "CN", "exporter", ()),
               "de-customs": ("German Customs Hamburg", "DE", "customs", ()),
               "berlin-shop": ("Berlin Retail", "DE", "retailer", ())}

    def __init__(self, t: Tracker, *, build: bool = True) -> None:
        self.t = t
        if build:
            t.init()
            for pid, (name, country, role, extra) in self.PARTIES.items():
                t.add_party(pid, name, country, role, *extra)
        self.acme, self.pearl, self.customs, self.shop = (t.work / f"{p}.key" for p in self.PARTIES)

    def commission(self, *serials: str, lot: str = "L1") -> str:
        args = [a for s in serials for a in ("--item", item(s))]
        return self.t.record("commission", self.acme, *args, "--product-name", "Aurora earbuds",
                             "--lot", lot)["event_id"]

    def to_shop(self, serial: str) -> list[str]:
        """commission → ship to exporter → receive → ship to shop → customs release → receive."""
        t, key = self.t, item(serial)
        ids = [self.commission(serial)]
        s1 = t.record("ship", self.acme, "--item", key, "--to", "pearl")["event_id"]
        r1 = t.record("receive", self.pearl, "--item", key, "--from", "acme", "--ship", s1)["event_id"]
        s2 = t.record("ship", self.pearl, "--item", key, "--to", "berlin-shop")["event_id"]
        i1 = t.record("inspect", self.customs, "--item", key, "--decision", "released")["event_id"]
        r2 = t.record("receive", self.shop, "--item", key, "--from", "pearl", "--ship", s2)["event_id"]
        return ids + [s1, r1, s2, i1, r2]


@pytest.fixture(scope="module")
def chain_template(tmp_path_factory) -> Tracker:
    """Built once per module (init + four parties), copied into each test's own home."""
    root = tmp_path_factory.mktemp("chain")
    t = Tracker(root / "home", root / "work")
    t.work.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAYBILL_HOME", str(t.home))
        for var in ("WAYBILL_DATABASE_URL", "WAYBILL_KEY_PASSPHRASE", "WAYBILL_ORIGIN", "WAYBILL_RESOLVER"):
            mp.delenv(var, raising=False)
        Chain(t)
    return t


@pytest.fixture
def chain(chain_template: Tracker, tracker: Tracker) -> Chain:
    src = chain_template
    shutil.copytree(src.home, tracker.home, ignore=shutil.ignore_patterns("ledger.db*"))
    s, d = sqlite3.connect(src.db), sqlite3.connect(tracker.db)
    try:
        s.backup(d)  # a consistent copy, whatever is still in the WAL
    finally:
        s.close()
        d.close()
    for f in src.work.iterdir():
        shutil.copy2(f, tracker.work / f.name)
    tracker.vkey = src.vkey
    return Chain(tracker, build=False)


def one_line_error(result: Result, code: str, field: str | None = None) -> str:
    """A refusal: exactly one line on stderr, `error: <code> [<field>]: <message>`, nothing on stdout."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    assert lines[0].startswith(f"error: {code}"), lines[0]
    if field is not None:
        assert f"[{field}]" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == ""
    return lines[0]


def commands_listed(help_text: str) -> set[str]:
    section = help_text.split("Commands:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^ {2}(\S+)", section, re.M)}


# --- --help -----------------------------------------------------------------------------------------

def test_help_lists_every_core_command(tracker):
    result = tracker.ok("--help")
    listed = commands_listed(result.stdout)
    missing = [c for c in CORE_COMMANDS if c not in listed]
    assert not missing, f"`tracker --help` does not list {missing}"
    party_help = tracker.ok("party", "--help").stdout
    assert {"add", "revoke", "list", "show"} <= commands_listed(party_help)


def _subprocess_cmd() -> list[str]:
    exe = shutil.which("tracker")
    return [exe] if exe else [sys.executable, "-c", "from tracker.cli import main; main()"]


def test_smoke_as_a_real_process(tracker):
    """The installed `tracker` entry point, as a shell would run it."""
    tracker.init()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYBILL_")}
    env["WAYBILL_HOME"] = str(tracker.home)
    looked = subprocess.run(_subprocess_cmd() + ["lookup", GTIN, "NEVERMADE"], env=env, cwd=tracker.work,
                            capture_output=True, text=True, timeout=120)
    assert looked.returncode == 2, (looked.stdout, looked.stderr)
    assert "LIKELY COUNTERFEIT" in looked.stdout and "unknown_item" in looked.stdout


# --- init -------------------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_ledger_and_keys_and_is_idempotent(tracker):
    tracker.init()
    keys = tracker.home / "keys"
    assert tracker.db.is_file()
    for name in ("ledger.key", "admin.key"):
        assert (keys / name).is_file(), name
        assert _mode(keys / name) == 0o600, f"{name} has mode {oct(_mode(keys / name))}"
    admin = read_key_file(keys / "admin.key")
    ledger_key = read_key_file(keys / "ledger.key")
    assert admin.public_key != ledger_key.public_key
    # leaf 0: the genesis party statement registering `admin` with the admin key
    shown = json.loads(tracker.ok("party", "show", "admin").stdout)
    assert shown["roles"] == ["admin"]
    assert [k["keyid"] for k in shown["keys"]] == [admin.keyid]
    assert tracker.size() == (1, 1)
    assert parse_vkey(tracker.vkey).public_key == ledger_key.public_key
    checkpoint = tracker.ok("checkpoint").stdout
    files = {p: p.read_bytes() for p in keys.iterdir()}

    again = tracker.ok("init")
    assert "nothing changed" in again.stdout
    assert tracker.size() == (1, 1)
    assert tracker.ok("checkpoint").stdout == checkpoint
    assert {p: p.read_bytes() for p in keys.iterdir()} == files


def test_init_with_admin_key_file_uses_that_key(tracker):
    own = generate_keypair()
    path = write_key_file(tracker.work / "my-admin.key", own)
    result = tracker.init("--admin-key", path)
    assert own.keyid in result.stdout
    shown = json.loads(tracker.ok("party", "show", "admin").stdout)
    assert [k["keyid"] for k in shown["keys"]] == [own.keyid]
    assert not (tracker.home / "keys" / "admin.key").exists(), "an admin key was generated although one was given"
    # the given key is the one that can now register parties
    dev = tracker.keygen("dev")
    tracker.ok("party", "add", "acme", "--name", "Acme", "--country", "CN", "--role", "manufacturer",
               "--key", dev, "--admin-key", path)
    # a second init, even naming another admin key, changes nothing
    other = write_key_file(tracker.work / "other.key", generate_keypair())
    before = tracker.size()
    assert "nothing changed" in tracker.ok("init", "--admin-key", other).stdout
    assert tracker.size() == before
    assert [k["keyid"] for k in json.loads(tracker.ok("party", "show", "admin").stdout)["keys"]] == [own.keyid]


# --- keygen -----------------------------------------------------------------------------------------

def test_keygen_writes_0600_and_never_prints_the_private_key(tracker):
    out = tracker.work / "device.key"
    result = tracker.ok("keygen", "--out", out)
    assert _mode(out) == 0o600
    doc = json.loads(out.read_text())
    pair = read_key_file(out)
    assert doc["keyid"] == pair.keyid and doc["public_key"] == pair.public_key_b64
    seed_b64 = base64.b64encode(pair.seed).decode()
    assert doc["private_key"] == seed_b64
    printed = result.stdout + result.stderr
    assert pair.keyid in printed
    assert pair.public_key_b64 in printed
    assert seed_b64 not in printed and pair.seed.hex() not in printed

    before = out.read_bytes()
    again = tracker("keygen", "--out", out)
    assert again.exit_code != 0
    assert out.read_bytes() == before, "keygen overwrote an existing key file"
    assert "exist" in again.stderr and "Traceback" not in again.stderr


def test_keygen_encrypt_and_record_needs_the_passphrase(chain):
    t = chain.t
    pw = {"WAYBILL_KEY_PASSPHRASE": "correct horse battery"}
    enc = t.work / "enc.key"
    result = t.ok("keygen", "--out", enc, "--encrypt", env=pw)
    assert _mode(enc) == 0o600
    doc = json.loads(enc.read_text())
    assert "private_key" not in doc and doc.get("encrypted_private_key")
    pair = read_key_file(enc, passphrase=pw["WAYBILL_KEY_PASSPHRASE"])
    assert doc["public_key"] == pair.public_key_b64
    seed_b64 = base64.b64encode(pair.seed).decode()
    assert seed_b64 not in result.stdout + result.stderr and seed_b64 not in enc.read_text()
    assert pair.keyid in result.stdout

    # registering a device needs only its public half: no passphrase
    t.add_party("acme2", "Acme Second Plant", "CN", "manufacturer", key=enc)
    before = t.size()
    no_pw = t("record", "commission", "--key", enc, "--item", item("ENC1"))
    assert no_pw.exit_code != 0 and "passphrase" in no_pw.stderr
    wrong = t("record", "commission", "--key", enc, "--item", item("ENC1"),
              env={"WAYBILL_KEY_PASSPHRASE": "wrong"})
    assert wrong.exit_code != 0 and "Traceback" not in wrong.stderr
    assert t.size() == before, "a record with an unopened key wrote to the ledger"

    rec = t.record("commission", enc, "--item", item("ENC1"), env=pw)
    assert rec["created"] is True
    pwfile = t.work / "pass.txt"
    pwfile.write_text(pw["WAYBILL_KEY_PASSPHRASE"] + "\n")
    rec2 = t.record("commission", enc, "--item", item("ENC2"), "--passphrase-file", pwfile)
    assert rec2["leaf_index"] == rec["leaf_index"] + 1
    code, answer = t.lookup_json(item("ENC1"))
    assert answer["product"]["manufacturer"] == "acme2" and answer["holder"] == "acme2"


# --- party ------------------------------------------------------------------------------------------

def test_party_add_list_show(tracker):
    tracker.init()
    k1 = tracker.keygen("acme-a")
    k2 = tracker.keygen("acme-b")
    tracker.ok("party", "add", "acme", "--name", "Acme Manufacturing", "--country", "CN",
               "--role", "manufacturer", "--key", k1, "--key", read_key_file(k2).public_key_b64,
               "--gs1-prefix", "950600", "--admin-key", tracker.admin_key)
    listing = tracker.ok("party", "list").stdout
    rows = {ln.split()[0]: ln for ln in listing.splitlines() if ln.strip()}
    assert set(rows) == {"admin", "acme"}
    assert "Acme Manufacturing" in rows["acme"] and "manufacturer" in rows["acme"] and "CN" in rows["acme"]
    shown = json.loads(tracker.ok("party", "show", "acme").stdout)
    assert shown["id"] == "acme" and shown["name"] == "Acme Manufacturing" and shown["country"] == "CN"
    assert shown["roles"] == ["manufacturer"] and shown["gs1_prefixes"] == ["950600"]
    assert {k["keyid"] for k in shown["keys"]} == {read_key_file(k1).keyid, read_key_file(k2).keyid}
    text = json.dumps(shown)
    for k in (k1, k2):
        assert base64.b64encode(read_key_file(k).seed).decode() not in text
    missing = tracker("party", "show", "nobody")
    assert missing.exit_code != 0 and "Traceback" not in missing.stderr


def test_party_revoke_stops_that_key(chain):
    t = chain.t
    chain.commission("REV1")
    keyid = read_key_file(chain.acme).keyid
    t.ok("party", "revoke", "acme", "--keyid", keyid, "--admin-key", t.admin_key)
    shown = json.loads(t.ok("party", "show", "acme").stdout)
    assert [k.get("revoked_at") is not None for k in shown["keys"]] == [True]
    before = t.size()
    result = t("record", "ship", "--key", chain.acme, "--item", item("REV1"), "--to", "pearl")
    assert result.exit_code == 1
    one_line_error(result, "revoked_key")
    assert t.size() == before


# --- record -----------------------------------------------------------------------------------------

def test_record_full_chain_fetches_prev_and_ends_genuine(chain):
    t = chain.t
    key = item("HAPPY1")
    c = chain.commission("HAPPY1")
    s1 = t.record("ship", chain.acme, "--item", key, "--to", "pearl")
    r1 = t.record("receive", chain.pearl, "--item", key, "--from", "acme", "--ship", s1["event_id"])
    s2 = t.record("ship", chain.pearl, "--item", key, "--to", "berlin-shop")
    i1 = t.record("inspect", chain.customs, "--item", key, "--decision", "released", "--note", "papers ok")
    # the note is private: the statement signs only its salted commitment; the salt comes back for delivery
    from tracker.notes import opens
    from tracker.home import open_ledger as _open

    led = _open(writable=False)
    _, inspected = led.get_event(i1["event_id"])
    led.store.close()
    assert inspected.note is None and opens(inspected.note_commitment, i1["note_salt"], "papers ok")
    stored = t("note", "add", i1["event_id"], "--salt", i1["note_salt"], input="papers ok\n")
    assert stored.exit_code == 0 and "stored" in stored.output, stored.output
    wrong = t("note", "add", i1["event_id"], "--salt", i1["note_salt"], input="papers NOT ok\n")
    assert wrong.exit_code == 1 and "do not match" in wrong.output
    r2 = t.record("receive", chain.shop, "--item", key, "--from", "pearl", "--ship", s2["event_id"])
    code, mid = t.lookup_json(key)
    assert (code, mid["verdict"], mid["holder"]) == (0, "genuine", "berlin-shop")
    sold = t.record("sell", chain.shop, "--item", key)
    ids = [c, s1["event_id"], r1["event_id"], s2["event_id"], i1["event_id"], r2["event_id"], sold["event_id"]]
    assert all(r["created"] for r in (s1, r1, s2, i1, r2, sold))

    # prev was fetched from the ledger: each statement links to the item's previous event
    from tracker.home import open_ledger

    ledger = open_ledger(writable=False)
    for before, after in zip(ids, ids[1:]):
        _, st = ledger.get_event(after)
        assert dict(st.prev) == {key: before}, (st.type, st.prev)
    _, receive = ledger.get_event(r2["event_id"])
    assert receive.from_ == "pearl" and receive.ship == s2["event_id"]
    _, inspect = ledger.get_event(i1["event_id"])
    assert inspect.decision == "released" and inspect.note is None and inspect.note_commitment
    assert inspect.location["country"] == "DE"

    code, answer = t.lookup_json(key)
    assert code == 0 and answer["verdict"] == "genuine", answer["reasons"]
    assert [p["event_id"] for p in answer["path"]] == ids
    assert [p["type"] for p in answer["path"]] == ["commission", "ship", "receive", "ship", "inspect", "receive",
                                                   "sell"]
    assert answer["holder"] is None  # sold to a consumer
    assert answer["product"] == {"name": "Aurora earbuds", "manufacturer": "acme", "lot": "L1"}


def test_record_aggregate_and_disaggregate_move_items_with_the_container(chain):
    t = chain.t
    a, b, pallet = item("AGG1"), item("AGG2"), f"00/{SSCC}"
    chain.commission("AGG1", "AGG2")
    agg = t.record("aggregate", chain.acme, "--container", pallet, "--item", a, "--item", b)
    ship = t.record("ship", chain.acme, "--item", pallet, "--to", "pearl")
    rec = t.record("receive", chain.pearl, "--item", f"(00){SSCC}", "--from", "acme", "--ship", ship["event_id"])
    dis = t.record("disaggregate", chain.pearl, "--container", pallet, "--item", a, "--item", b)
    code, answer = t.lookup_json(a)
    assert code == 0 and answer["holder"] == "pearl"
    assert [p["event_id"] for p in answer["path"]][1:] == [agg["event_id"], ship["event_id"], rec["event_id"],
                                                           dis["event_id"]]


def test_refused_unknown_item_writes_nothing(chain):
    t = chain.t
    chain.commission("KNOWN1")
    before = t.size()
    result = t("record", "ship", "--key", chain.acme, "--item", item("KNOWN1"), "--item", item("NEVERMADE"),
               "--to", "pearl")
    assert result.exit_code == 1
    line = one_line_error(result, "unknown_item", "items")
    assert "NEVERMADE" in line
    assert t.size() == before


def test_refused_wrong_role_writes_nothing(chain):
    t = chain.t
    chain.commission("ROLE1")
    before = t.size()
    result = t("record", "sell", "--key", chain.acme, "--item", item("ROLE1"))
    assert result.exit_code == 1
    one_line_error(result, "unauthorized_signer", "actor")
    result = t("record", "commission", "--key", chain.pearl, "--item", item("ROLE2"))
    assert result.exit_code == 1
    one_line_error(result, "unauthorized_signer", "actor")
    assert t.size() == before


def test_refused_receive_of_a_shipment_to_someone_else(chain):
    t = chain.t
    chain.commission("RCV1")
    s1 = t.record("ship", chain.acme, "--item", item("RCV1"), "--to", "pearl")
    before = t.size()
    result = t("record", "receive", "--key", chain.shop, "--item", item("RCV1"), "--from", "acme",
               "--ship", s1["event_id"])
    assert result.exit_code == 1
    one_line_error(result, "receive_mismatch")
    assert t.size() == before


def test_refused_bad_item_code_is_one_line_and_writes_nothing(chain):
    t = chain.t
    chain.commission("BAD1")
    before = t.size()
    result = t("record", "ship", "--key", chain.acme, "--item", item("BAD1", BAD_GTIN), "--to", "pearl")
    assert t.size() == before
    one_line_error(result, "invalid_identifier", "gtin")
    assert result.exit_code == 1, f"a refused record must exit 1 (cli.py: 1 = refused, record), got {result.exit_code}"


def test_refused_aggregate_without_container_is_one_line_and_writes_nothing(chain):
    t = chain.t
    chain.commission("NOC1")
    before = t.size()
    result = t("record", "aggregate", "--key", chain.acme, "--item", item("NOC1"))
    assert result.exit_code != 0
    assert t.size() == before
    assert "--container" in result.stderr
    one_line_error(result, "", "--container")
    assert result.exit_code == 1, f"a refused record must exit 1, got {result.exit_code}"


# --- lookup -----------------------------------------------------------------------------------------

def test_lookup_exit_codes_follow_the_verdict(chain):
    t = chain.t
    chain.to_shop("G1")
    assert t("lookup", item("G1")).exit_code == 0
    assert "GENUINE" in t("lookup", item("G1")).stdout

    # suspicious: customs holds the shipment
    chain.commission("H1")
    t.record("ship", chain.acme, "--item", item("H1"), "--to", "pearl")
    t.record("inspect", chain.customs, "--item", item("H1"), "--decision", "held")
    held = t("lookup", item("H1"))
    assert held.exit_code == 1, held.stdout
    assert "SUSPICIOUS" in held.stdout and "held_by_customs" in held.stdout

    # likely counterfeit: never made; and shipped by someone who never held it
    unknown = t("lookup", GTIN, "NEVERMADE")
    assert unknown.exit_code == 2 and "LIKELY COUNTERFEIT" in unknown.stdout
    chain.commission("GAP1")
    t.record("ship", chain.pearl, "--item", item("GAP1"), "--to", "berlin-shop")
    gap = t("lookup", item("GAP1"))
    assert gap.exit_code == 2 and "custody_gap" in gap.stdout

    # error: a GTIN with a wrong check digit, in any spelling
    for args in ([item("X1", BAD_GTIN)], [BAD_GTIN, "X1"], [f"https://id.example.com/01/{BAD_GTIN}/21/X1"]):
        bad = t("lookup", *args)
        assert bad.exit_code == 3, (args, bad.exit_code, bad.stdout)
        one_line_error(bad, "invalid_identifier", "gtin")
    assert t("lookup", "not a code at all").exit_code == 3


def test_lookup_json_is_the_spec_answer(chain):
    t = chain.t
    ids = chain.to_shop("J1")
    code, answer = t.lookup_json(item("J1"))
    assert code == 0
    assert set(answer) == ANSWER_KEYS
    assert (answer["item"], answer["gtin"], answer["serial"]) == (item("J1"), GTIN, "J1")
    assert answer["verdict"] == "genuine" and answer["reasons"] == []
    assert answer["holder"] == "berlin-shop"
    assert answer["product"]["manufacturer"] == "acme" and answer["product"]["lot"] == "L1"
    assert [p["event_id"] for p in answer["path"]] == ids
    first = answer["path"][0]
    assert first["actor"] == "acme" and first["actor_name"] == "Acme Manufacturing"
    assert first["role"] == "manufacturer" and first["location"] == {"name": "Acme Manufacturing", "country": "CN"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["time"])
    ship = answer["path"][1]
    assert ship["to"] == "pearl" and "from" not in ship
    assert answer["path"][2]["from"] == "acme"
    assert answer["path"][4]["decision"] == "released"
    cp = verify_checkpoint(answer["checkpoint"], parse_vkey(t.vkey))
    assert cp.size == t.size()[0]

    unknown_code, unknown = t.lookup_json(GTIN, "NEVERMADE")
    assert unknown_code == 2 and set(unknown) == ANSWER_KEYS
    assert unknown["verdict"] == "likely_counterfeit"
    assert [r["code"] for r in unknown["reasons"]] == ["unknown_item"]
    assert unknown["reasons"][0]["severity"] == "critical" and unknown["reasons"][0]["message"]
    assert unknown["path"] == [] and unknown["holder"] is None


SPELLINGS = [
    ["https://id.example.com/01/09506000134352/21/S%2F1"],
    ["http://127.0.0.1:8000/01/09506000134352/21/S%2F1?linkType=all"],
    ["(01)09506000134352(21)S/1"],
    ["0109506000134352\x1d21S/1"],
    ["0109506000134352 21S/1"],
    ["09506000134352", "S/1"],
    ["9506000134352", "S/1"],  # GTIN-13, padded
    ["01/09506000134352/21/S/1"],
]


def test_lookup_accepts_every_code_spelling(chain):
    t = chain.t
    t.record("commission", chain.acme, "--item", "(01)09506000134352(21)S/1")
    for spelling in SPELLINGS:
        code, answer = t.lookup_json(*spelling)
        assert code == 0, (spelling, answer["reasons"])
        assert answer["item"] == "01/09506000134352/21/S/1" and answer["serial"] == "S/1", spelling
        assert answer["holder"] == "acme", spelling


# --- checkpoint and verify --------------------------------------------------------------------------

def test_checkpoint_is_a_signed_note_under_the_ledger_vkey(chain):
    t = chain.t
    chain.to_shop("CP1")
    note = t.ok("checkpoint").stdout
    lines = note.split("\n")
    assert lines[0] == "waybill.local/ledger" and lines[1] == str(t.size()[0])
    cp = verify_checkpoint(note, parse_vkey(t.vkey), origin="waybill.local/ledger")
    assert cp.size == t.size()[0]
    audit = t.ok("verify").stdout
    assert base64.b64encode(cp.root_hash).decode() in audit
    # and only under that key: a verifier for another key refuses it
    from tracker.checkpoint import vkey_string

    with pytest.raises(VerificationError):
        verify_checkpoint(note, parse_vkey(vkey_string("waybill.local/ledger", generate_keypair().public_key)))


def _edit_payload(leaf_data: bytes) -> bytes:
    env = json.loads(leaf_data)
    st = json.loads(base64.b64decode(env["payload"]))
    st["location"]["name"] = st["location"]["name"] + " (edited)"
    env["payload"] = base64.b64encode(json.dumps(st, sort_keys=True, separators=(",", ":")).encode()).decode()
    return json.dumps(env, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("attack", ["edit", "delete"])
def test_verify_clean_then_names_the_tampered_leaf(chain, attack):
    t = chain.t
    chain.to_shop("V1")
    clean = t("verify")
    assert clean.exit_code == 0, clean.stderr
    entries = t.size()[0]
    assert clean.stdout.startswith(f"ok: {entries} entries")
    target = 6
    with sqlite3.connect(t.db) as conn:
        if attack == "edit":
            (data,) = conn.execute("SELECT leaf_data FROM entries WHERE leaf_index=?", (target,)).fetchone()
            conn.execute("UPDATE entries SET leaf_data=? WHERE leaf_index=?", (_edit_payload(bytes(data)), target))
        else:
            conn.execute("DELETE FROM entries WHERE leaf_index=?", (target,))
    conn.close()
    result = t("verify")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert not result.stdout.startswith("ok")
    assert re.search(rf"\bentry {target}\b", result.stderr), result.stderr
    assert "Traceback" not in result.stderr


# --- demo -------------------------------------------------------------------------------------------

def test_demo_builds_once_and_verifies(tracker):
    first = tracker.ok("demo", "--items", "80")
    assert "built now" in first.stdout
    size = tracker.size()
    assert size[0] > 80
    second = tracker.ok("demo", "--items", "80")
    assert "already built" in second.stdout
    assert tracker.size() == size
    assert tracker("verify").exit_code == 0
    # the sample links it prints get the verdict they are listed under
    expected = {"genuine": 0, "genuine pallets (by SSCC)": 0, "suspicious": 1, "likely_counterfeit": 2, "unknown": 2}
    kind, checked = None, 0
    samples = first.stdout
    assert "demo sign-ins" not in samples  # staff accounts are the web side's: `tracker serve --demo` makes them
    for line in samples.splitlines()[1:]:
        if not line.strip():
            continue
        if line.strip().endswith(":"):
            kind = line.strip()[:-1]
            continue
        url = line.strip()
        assert kind in expected, line
        assert tracker("lookup", url).exit_code == expected[kind], (kind, url)
        checked += 1
    assert checked >= 3


# --- codes: the one GS1 parser -------------------------------------------------------------------------------

def test_record_accepts_any_gs1_ai_the_scanner_accepts(chain):
    # (7003) expiry date and time: the scanner kept it as data while `tracker record` refused the code.
    from tracker.identifiers import read_code

    codes = {"AI7003": f"(01){GTIN}(7003)2612311230(21)AI7003",
             "AI7003FNC1": f"01{GTIN}70032612311230\x1d21AI7003FNC1"}   # as a GS1 DataMatrix carries it
    for serial, code in codes.items():
        assert read_code(code).key == item(serial)
    t = chain.t
    t.record("commission", chain.acme, *[a for c in codes.values() for a in ("--item", c)],
             "--product-name", "Aurora earbuds")
    for serial in codes:
        status, answer = t.lookup_json(item(serial))
        assert status == 0 and answer["item"] == item(serial)


@pytest.mark.parametrize("args", [
    ["GTIN", GTIN, "SN", "TYPED1"],
    [f"GTIN {GTIN} SN TYPED1"],
    [f"GTIN {GTIN}\nSN TYPED1\n(01){GTIN}(21)TYPED1"],
    [GTIN, "TYPED1"],
    [f"(01) {GTIN} (21) TYPED1"],
    ["01", GTIN, "21", "TYPED1"],
    [f"https://id.example.com/dl/01/{GTIN}/10/L1/21/TYPED1?17=271231"],
])
def test_lookup_reads_what_the_label_prints(chain, args):
    chain.commission("TYPED1")
    code, answer = chain.t.lookup_json(*args)
    assert code == 0 and answer["item"] == item("TYPED1")


@pytest.mark.parametrize("code, words", [
    (f"https://id.example.com/01/{GTIN}/21/BADL/10/L1", "lists the lot after the serial"),
    (f"https://id.example.com/01/{GTIN}/21/BADL/", "does not end with '/'"),
    (f"ftp://id.example.com/01/{GTIN}/21/BADL", "https:// or http://"),
    (f"(01){GTIN}(21)BAD(L)", "holds a bracket"),
])
def test_record_refuses_a_bad_link_in_one_line_naming_the_rule(chain, code, words):
    t = chain.t
    before = t.size()
    result = t("record", "commission", "--key", chain.acme, "--item", code, "--product-name", "X")
    assert result.exit_code == 1
    assert words in one_line_error(result, "invalid_identifier")
    assert t.size() == before


# --- licences ----------------------------------------------------------------------------------------------

def test_a_brand_owner_licenses_a_contract_manufacturer_from_the_command_line(chain):
    t = chain.t
    t.add_party("vn-oem", "Saigon Contract Assembly", "VN", "manufacturer")
    oem = t.work / "vn-oem.key"

    def made_by_oem(serial: str) -> tuple[int, dict]:
        t.record("commission", oem, "--item", item(serial), "--product-name", "Aurora earbuds")
        return t.lookup_json(item(serial))

    code, answer = made_by_oem("OEM1")  # not licensed yet: a fake of Acme's brand
    assert code == 2 and "not_commissioned_by_manufacturer" in {r["code"] for r in answer["reasons"]}
    granted = t.ok("licence", "--key", str(chain.acme), "--licensee", "vn-oem", "--gs1-prefix", "950600",
                   "--not-before", "2020-01-01T00:00:00Z")
    assert json.loads(granted.stdout)["created"]
    code, answer = made_by_oem("OEM2")
    assert code == 0 and [r["code"] for r in answer["reasons"]] == ["licensed_manufacturer"]
    # a party that does not own the prefix cannot grant it: one line, exit 1, nothing written
    before = t.size()
    refused = t("licence", "--key", str(oem), "--licensee", "acme", "--gs1-prefix", "950600")
    assert refused.exit_code == 1 and t.size() == before
    assert one_line_error(refused, "not_prefix_owner", "gs1_prefixes")
    # ending the licence: a new one whose end has passed
    t.ok("licence", "--key", str(chain.acme), "--licensee", "vn-oem", "--gs1-prefix", "950600",
         "--not-before", "2020-01-01T00:00:00Z", "--not-after", "2021-01-01T00:00:00Z")
    code, answer = made_by_oem("OEM3")
    assert code == 2 and "not_commissioned_by_manufacturer" in {r["code"] for r in answer["reasons"]}


def test_the_demo_in_a_home_set_up_without_it_says_what_to_do(tracker):
    """Its 100 days of history are registered by the admin key, which `tracker init` made just now."""
    tracker.init()
    before = tracker.size()
    result = tracker("demo", "--items", "40")
    assert result.exit_code == 3
    last = result.stderr.strip().splitlines()[-1]  # after its "building demo" progress line
    assert last.startswith("error: not_a_demo_home: ") and "empty WAYBILL_HOME" in last
    assert "Traceback" not in result.stderr and tracker.size() == before
