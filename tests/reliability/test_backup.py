"""Backup and restore (issue): `tracker backup FILE` takes a consistent copy while client threads keep writing
through gunicorn; `tracker restore FILE` into an empty home gives a ledger that passes `tracker verify` and
serves exactly the checkpoint the backup recorded, which the live ledger proves is a prefix of its own (RFC
9162 consistency). A restore never overwrites a ledger, never installs a key that is not the ledger's, and never
trusts a damaged file. Every refusal is one line on stderr with a documented exit code.
"""
from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.reliability.harness import (PG_URL, Installation, Server, journey, ledger_state, now, pg_schema_url,
                                       register_parties, verify_cli)
from tests.reliability.load import Load, wait_for
from tracker import merkle
from tracker.checkpoint import parse_vkey, verify_checkpoint
from tracker.keys import generate_keypair, write_key_file

pytestmark = pytest.mark.slow

BACKUPS = 3


def manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        fh = tar.extractfile("waybill-backup.json")
        assert fh is not None
        return json.loads(fh.read())


def one_line_error(stderr: str, code: str) -> None:
    """A refusal: exactly one ``error: <code>: ...`` line, and no traceback."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {code}:"), stderr
    assert "Traceback" not in stderr, stderr


@pytest.fixture
def empty_target(backend: str, tmp_path: Path) -> Iterator[Any]:
    """Factory: an empty home (and, on PostgreSQL, an empty database) to restore into. A PostgreSQL dump holds
    schema-qualified tables, so the target database's search path names the source's schema; each target is
    its own database on the shared server (created from template0, dropped afterwards)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    made: list[str] = []
    base_url = PG_URL or ""
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT") if backend == "postgres" else None

    def make(source: Installation) -> Installation:
        home = tmp_path / f"restored-{len(made)}-{uuid.uuid4().hex[:6]}"
        home.mkdir()  # an empty home: nothing in it yet
        if admin is None:
            made.append(str(home))
            return Installation(home=home)
        db = "wb_restore_" + uuid.uuid4().hex[:12]
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {db} TEMPLATE template0")
        made.append(db)
        schema = source.config.database_url.rsplit("%3D", 1)[1]
        base = make_url(base_url).set(database=db).render_as_string(hide_password=False)
        return Installation(home=home, database_url=pg_schema_url(base, schema))

    yield make
    if admin is not None:
        with admin.connect() as conn:
            for db in made:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        admin.dispose()


def test_backup_while_writing_restores_to_a_ledger_that_verifies_and_serves_the_same_checkpoint(
        installation, backend, empty_target, tmp_path, figures):
    from web import create_app

    inst = installation
    register_parties(inst, {f"ol-mk-{n}": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]} for n in range(2)}
                     | {f"ol-wh-{n}": {"roles": ["warehouse", "retailer"]} for n in range(2)})
    files: list[Path] = []
    outputs: list[str] = []
    during: list[int] = []  # events acknowledged while each backup ran
    with Server(inst, workers=2) as server:
        loads = [Load(server.base, n, expect={}) for n in range(2)]
        for load in loads:
            load.start()
        acked = lambda: sum(len(x.acks) for x in loads)  # noqa: E731
        try:
            for k in range(BACKUPS):
                before = acked()
                wait_for(lambda: acked() >= before + 20 or any(x.failures for x in loads), "writes before a backup")
                path = tmp_path / f"ledger-{k}.waybill"
                started = acked()
                done = inst.tracker("backup", str(path))
                assert done.returncode == 0, done.stderr
                during.append(acked() - started)
                files.append(path)
                outputs.append(done.stderr)
        finally:
            for load in loads:
                load.halt.set()
            for load in loads:
                load.join(timeout=120)
        assert not [f for x in loads for f in x.failures], [f for x in loads for f in x.failures][:3]
    assert all(n > 0 for n in during), f"no write went in while a backup ran: {during}"
    assert any("copying database pages" in o or "dumping tables" in o for o in outputs), outputs[0]
    live = inst.open()
    try:
        live_size = live.size()
        verifier, origin = parse_vkey(live.vkey), live.origin
        sizes = []
        for path in files:
            assert path.stat().st_mode & 0o077 == 0, "a backup holding keys must not be readable by others"
            info = manifest(path)
            assert {"home/keys/ledger.key", "home/keys/admin.key", "home/config.json"} <= set(info["members"])
            cp = verify_checkpoint(info["checkpoint"], verifier, origin=origin)
            assert cp.size == info["tree_size"], "the copy's checkpoint does not cover exactly the copied entries"
            # The copy is a prefix of the live ledger, as the live ledger itself proves.
            proof = live.consistency_proof(cp.size, live_size) if cp.size != live_size else []
            merkle.verify_consistency(cp.size, live_size, cp.root_hash, live.verified_checkpoint().root_hash, proof)
            sizes.append(cp.size)
    finally:
        live.store.close()
    assert sizes == sorted(sizes) and sizes[0] < live_size, sizes

    for path in (files[0], files[-1]):
        target = empty_target(inst)
        done = target.tracker("restore", str(path))
        assert done.returncode == 0, done.stderr
        assert "restoring" in done.stderr  # progress on stderr
        code, output = verify_cli(target)
        assert code == 0, output
        info = manifest(path)
        assert target.tracker("checkpoint").stdout == info["checkpoint"]
        assert ledger_state(target).size == info["tree_size"]
        # The restored installation serves that checkpoint, and (with its keys back) can append again.
        app = create_app({"WAYBILL_CONFIG": target.config, "RATELIMIT_ENABLED": False, "SECRET_KEY": "restore"})
        try:
            client = app.test_client()
            assert client.get("/api/v1/checkpoint").get_data(as_text=True) == info["checkpoint"]
            env = journey("ol-mk-0", "ol-wh-0", f"AFTER{sizes[0]}", now())[0]
            r = client.post("/api/v1/events", json=env.to_json())
            assert r.status_code == 201 and r.get_json()["leaf_index"] == info["tree_size"], r.get_json()
        finally:
            app.extensions["waybill"].store.close()
        # A second restore onto it (no longer empty) is refused and changes nothing.
        before = target.tracker("checkpoint").stdout
        again = target.tracker("restore", str(path))
        assert again.returncode == 1, again.stderr
        one_line_error(again.stderr, "ledger_not_empty")
        assert target.tracker("checkpoint").stdout == before

    # Restoring over the live ledger is refused as well.
    live_cp = inst.tracker("checkpoint").stdout
    done = inst.tracker("restore", str(files[0]))
    assert done.returncode == 1 and inst.tracker("checkpoint").stdout == live_cp
    one_line_error(done.stderr, "ledger_not_empty")
    figures.update(backend=backend, backups_during_writes=len(files), backup_sizes=sizes, live_size=live_size,
                   events_acknowledged_while_backing_up=during, restores=2, refusals=3)


def test_a_damaged_or_mismatched_backup_is_refused_before_anything_is_written(installation, backend, empty_target,
                                                                             tmp_path):
    inst = installation
    register_parties(inst, {"bk-mk": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]}})
    path = tmp_path / "good.waybill"
    assert inst.tracker("backup", str(path)).returncode == 0
    # `backup` refuses to overwrite a file unless told to.
    again = inst.tracker("backup", str(path))
    assert again.returncode == 3
    one_line_error(again.stderr, "backup_exists")
    assert inst.tracker("backup", "--force", str(path)).returncode == 0

    # One flipped byte in the database copy.
    damaged = tmp_path / "damaged.waybill"
    with tarfile.open(path) as src, tarfile.open(damaged, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("ledger."):
                data = data[:2000] + bytes([data[2000] ^ 1]) + data[2001:]
            dst.addfile(member, io.BytesIO(data))
    target = empty_target(inst)
    done = target.tracker("restore", str(damaged))
    assert done.returncode == 1
    one_line_error(done.stderr, "backup_corrupt")
    assert not target.config.ledger_key_path.exists()

    # A home that already holds another ledger key.
    target = empty_target(inst)
    target.config.keys_dir.mkdir(parents=True)
    write_key_file(target.config.ledger_key_path, generate_keypair())
    done = target.tracker("restore", str(path))
    assert done.returncode == 1
    one_line_error(done.stderr, "key_mismatch")
    assert target.tracker("verify").returncode != 0  # nothing was restored there

    # Not a backup at all.
    junk = tmp_path / "junk.waybill"
    junk.write_bytes(b"not a tar file")
    done = empty_target(inst).tracker("restore", str(junk))
    assert done.returncode == 1
    one_line_error(done.stderr, "not_a_backup")

    # Without keys: verifiable and served read-only, and the keys stay out of the file.
    bare = tmp_path / "bare.waybill"
    assert inst.tracker("backup", "--no-keys", str(bare)).returncode == 0
    assert not [m for m in manifest(bare)["members"] if m.startswith("home/keys/")]
    target = empty_target(inst)
    assert target.tracker("restore", str(bare)).returncode == 0
    assert verify_cli(target)[0] == 0
    assert target.tracker("checkpoint").stdout == manifest(bare)["checkpoint"]


def test_backup_and_restore_explain_themselves(installation):
    for command, words in (("backup", ("consistent", "--no-keys", "0600")), ("restore", ("empty", "verify"))):
        done = installation.tracker(command, "--help")
        assert done.returncode == 0 and all(w in done.stdout for w in words), done.stdout
    assert "backup" in installation.tracker("--help").stdout
