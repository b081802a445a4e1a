"""`tracker`: the operator's command line (SPEC §6).

Exit codes: 0 success; 1 refused or failed verification (`record`, `verify`, `party`, `restore`); 2 usage
error; 3 any other error. `lookup` exits 0 genuine, 1 suspicious, 2 likely_counterfeit, 3 error.
Commands from other packages (the web app's `serve`, the scanners' `label`) plug in through the
``waybill.cli`` entry-point group, so the core never imports them.
"""
from __future__ import annotations

import base64
import json
import sys
from datetime import datetime, timezone
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, Any

import click

from .config import load_config
from .errors import IntegrityError, InvalidIdentifier, InvalidStatement, Rejected, TrackerError, VerificationError
from .home import init as init_home
from .home import open_ledger, read_passphrase
from .identifiers import parse_code
from .keys import KeyPair, generate_keypair, key_id, public_key_from_b64, read_key_file, write_key_file
from .ledger import Ledger
from .statements import format_time, parse_time

__all__ = ["main", "cli"]

EXIT_REFUSED, EXIT_ERROR = 1, 3


def _now(ledger: Any = None) -> datetime:
    """The time to record and judge by: with a ledger, never behind what it already recorded (tracker/clock.py)."""
    if ledger is None:
        return datetime.now(timezone.utc)
    from .clock import ledger_clock

    return ledger_clock(ledger.store).now()


def _fail(exc: TrackerError, code: int = EXIT_ERROR) -> None:
    where = f" [{exc.field}]" if getattr(exc, "field", None) else ""
    click.echo(f"error: {exc.code}{where}: {exc.message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Loads plug-in commands lazily and turns TrackerError into a one-line message and exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | {ep.name for ep in entry_points(group="waybill.cli")}
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None:
            for ep in entry_points(group="waybill.cli"):
                if ep.name == name:
                    try:
                        return ep.load()
                    except ImportError as exc:  # a plug-in that is not installed: say so, don't crash --help
                        why = f"`{name}` is unavailable: {exc}"
                        return click.Command(name, help=f"(unavailable: {exc})",
                                             callback=lambda: _fail(TrackerError(why, code="command_unavailable")))
        return cmd

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IntegrityError as exc:
            _fail(exc, EXIT_REFUSED)
        except (Rejected, VerificationError, InvalidStatement) as exc:
            _fail(exc, EXIT_REFUSED)
        except TrackerError as exc:
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Waybill: signed, tamper-evident provenance for physical goods.

    Configuration: WAYBILL_HOME (default ./.waybill) holds config and keys; WAYBILL_DATABASE_URL selects the
    ledger database (default: SQLite in WAYBILL_HOME; postgresql+psycopg://... for PostgreSQL).
    Passphrase-protected key files are opened with WAYBILL_KEY_PASSPHRASE or --passphrase-file.
    """


_passphrase_opt = click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True),
                               help="File whose first line is the key passphrase (else WAYBILL_KEY_PASSPHRASE).")


@cli.command()
@click.option("--admin-key", type=click.Path(dir_okay=False, exists=True),
              help="Use this key file as the first admin key (default: generate WAYBILL_HOME/keys/admin.key).")
@_passphrase_opt
def init(admin_key: str | None, passphrase_file: str | None) -> None:
    """Create the ledger, its signing key and the genesis admin statement (idempotent)."""
    config = load_config()
    result = init_home(config, admin_key_file=admin_key, now=_now(), passphrase=read_passphrase(passphrase_file))
    if result.created:
        click.echo(f"ledger created at {getattr(result.ledger.store, 'safe_url', config.database_url)}")
        click.echo(f"origin: {result.ledger.origin}")
        click.echo(f"verifier key: {result.ledger.vkey}")
        click.echo(f"admin key: {result.admin_key_path} (keyid {result.admin_keyid})")
    else:
        click.echo("ledger already initialised: nothing changed")


@cli.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Key file to write (mode 0600).")
@click.option("--encrypt", is_flag=True, help="Protect the private key with a passphrase (asked for, or "
                                              "--passphrase-file / WAYBILL_KEY_PASSPHRASE).")
@_passphrase_opt
def keygen(out: str, encrypt: bool, passphrase_file: str | None) -> None:
    """Make a device key pair. Prints the key id and public key, never the private key."""
    passphrase = read_passphrase(passphrase_file)
    if encrypt and not passphrase:
        passphrase = click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    pair = generate_keypair()
    write_key_file(out, pair, passphrase=passphrase if (encrypt or passphrase_file) else None)
    click.echo(f"keyid: {pair.keyid}")
    click.echo(f"public_key: {pair.public_key_b64}")
    click.echo(f"written: {out} (mode 0600)")


def _load_key(path: str, passphrase_file: str | None) -> KeyPair:
    return read_key_file(path, passphrase=read_passphrase(passphrase_file))


def _public_key_arg(value: str) -> bytes:
    """A key given as base64, or as a key file (its public half is read, never the private key)."""
    p = Path(value)
    if p.is_file():
        try:
            return public_key_from_b64(json.loads(p.read_text())["public_key"])
        except (ValueError, KeyError, TypeError) as exc:
            raise click.BadParameter(f"{value} is not a key file with a public_key") from exc
    try:
        return public_key_from_b64(value)
    except VerificationError as exc:
        raise click.BadParameter(f"{value!r} is neither a key file nor a base64 Ed25519 public key") from exc


@cli.group()
def party() -> None:
    """Register, update, revoke and list parties (admin-signed `party` statements)."""


def _append_party(ledger: Ledger, admin_key: KeyPair, doc: dict[str, Any]) -> None:
    from .signing import sign_statement

    result = ledger.append(sign_statement(doc, admin_key), now=_now(ledger))
    click.echo(json.dumps({"event_id": result.event_id, "leaf_index": result.leaf_index, "created": result.created}))


def _admin_location(ledger: Ledger) -> dict[str, str]:
    admin = ledger.party("admin")
    return {"name": admin.name, "country": admin.country}


@party.command("add")
@click.argument("party_id")
@click.option("--name", required=True)
@click.option("--country", required=True, help="ISO 3166-1 alpha-2, e.g. DE.")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["manufacturer", "exporter", "customs", "warehouse", "courier", "retailer", "admin"]))
@click.option("--key", "keys", multiple=True, required=True, help="Public key (base64) or key file; repeatable.")
@click.option("--gs1-prefix", "prefixes", multiple=True, help="GS1 company prefix the party owns; repeatable.")
@click.option("--not-before", help="RFC 3339 time new keys are valid from (default now); e.g. a device's "
                                   "enrolment time, so statements it signed offline before registration count.")
@click.option("--admin-key", required=True, type=click.Path(dir_okay=False, exists=True))
@_passphrase_opt
def party_add(party_id: str, name: str, country: str, roles: tuple[str, ...], keys: tuple[str, ...],
              prefixes: tuple[str, ...], not_before: str | None, admin_key: str, passphrase_file: str | None) -> None:
    """Register PARTY_ID (or add keys/roles to it) with a statement signed by the admin key."""
    from .signing import party_statement

    ledger = open_ledger()
    admin = _load_key(admin_key, passphrase_file)
    now = _now(ledger).replace(microsecond=0)
    records: dict[str, dict[str, str]] = {}
    try:
        existing = ledger.party(party_id)
        for k in existing.keys:
            rec = {"public_key": base64.b64encode(k.public_key).decode(), "not_before": format_time(k.not_before)}
            if k.revoked_at:
                rec["revoked_at"] = format_time(k.revoked_at)
            records[k.keyid] = rec
    except TrackerError:
        existing = None
    valid_from = parse_time(not_before, "--not-before") if not_before else now
    for value in keys:
        pk = _public_key_arg(value)
        records.setdefault(key_id(pk), {"public_key": base64.b64encode(pk).decode(),
                                        "not_before": format_time(valid_from)})
    doc = party_statement(admin="admin", time=now, location=_admin_location(ledger), party_id=party_id, name=name,
                          country=country, roles=roles, keys=list(records.values()),
                          gs1_prefixes=prefixes or (existing.gs1_prefixes if existing else ()))
    _append_party(ledger, admin, doc)


@party.command("revoke")
@click.argument("party_id")
@click.option("--keyid", required=True, help="Key id to revoke.")
@click.option("--at", "at", help="Revoked from this RFC 3339 time (default now), e.g. the time a device was stolen.")
@click.option("--admin-key", required=True, type=click.Path(dir_okay=False, exists=True))
@_passphrase_opt
def party_revoke(party_id: str, keyid: str, at: str | None, admin_key: str, passphrase_file: str | None) -> None:
    """Revoke one key of PARTY_ID: a new `party` statement with revoked_at set."""
    from .signing import party_statement

    ledger = open_ledger()
    admin = _load_key(admin_key, passphrase_file)
    existing = ledger.party(party_id)
    when = parse_time(at, "--at") if at else _now(ledger).replace(microsecond=0)
    if existing.key(keyid) is None:
        raise click.BadParameter(f"{party_id} has no key {keyid}", param_hint="--keyid")
    records = []
    for k in existing.keys:
        rec = {"public_key": base64.b64encode(k.public_key).decode(), "not_before": format_time(k.not_before)}
        revoked = when if k.keyid == keyid else k.revoked_at
        if revoked:
            rec["revoked_at"] = format_time(revoked)
        records.append(rec)
    doc = party_statement(admin="admin", time=_now(ledger).replace(microsecond=0), location=_admin_location(ledger),
                          party_id=party_id, name=existing.name, country=existing.country, roles=existing.roles,
                          keys=records, gs1_prefixes=existing.gs1_prefixes)
    _append_party(ledger, admin, doc)


@party.command("list")
def party_list() -> None:
    """List registered parties (public data)."""
    for p in open_ledger(writable=False).parties():
        click.echo(f"{p.id:24} {p.country}  {','.join(p.roles):24} {p.name}  ({len(p.keys)} keys)")


@party.command("show")
@click.argument("party_id")
def party_show(party_id: str) -> None:
    """Show one party as JSON (public data)."""
    click.echo(json.dumps(open_ledger(writable=False).party(party_id).public_json(), indent=1))


_TYPES = ["commission", "aggregate", "disaggregate", "ship", "receive", "inspect", "sell"]


@cli.command()
@click.argument("stype", metavar="TYPE", type=click.Choice(_TYPES))
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The signing device's key file.")
@click.option("--actor", help="Party id of the signer (default: the party that owns the key).")
@click.option("--item", "items", multiple=True, required=True,
              help="Item or container: key, Digital Link URL or element string; repeatable.")
@click.option("--container", help="Container (SSCC key) for aggregate/disaggregate.")
@click.option("--to", "to", help="Receiving party (ship).")
@click.option("--from", "from_", help="Shipping party (receive).")
@click.option("--ship", "ship", help="Event id of the shipment being received (receive).")
@click.option("--decision", type=click.Choice(["released", "held", "seized"]), help="Customs decision (inspect).")
@click.option("--note", help="Customs note (inspect): only its salted commitment is signed; the note and salt are "
                              "printed for delivery to the private notes store (`tracker note add`).")
@click.option("--gtin", help="Product GTIN (commission; default: the items' GTIN).")
@click.option("--product-name", help="Product name (commission).")
@click.option("--lot", help="Lot (commission).")
@click.option("--location-name", help="Where this happens (default: the party's name).")
@click.option("--country", help="Country of the location (default: the party's country).")
@click.option("--time", "when", help="RFC 3339 UTC time (default: now).")
@_passphrase_opt
def record(stype: str, key_file: str, actor: str | None, items: tuple[str, ...], container: str | None,
           to: str | None, from_: str | None, ship: str | None, decision: str | None, note: str | None,
           gtin: str | None, product_name: str | None, lot: str | None, location_name: str | None,
           country: str | None, when: str | None, passphrase_file: str | None) -> None:
    """Sign a TYPE statement with a device key and append it; prev links are fetched from the ledger."""
    from .provenance import head
    from .signing import new_statement, sign_statement

    ledger = open_ledger()
    key = _load_key(key_file, passphrase_file)
    if actor is None:
        with ledger.store.read() as txn:
            actor = txn.party_for_keyid(key.keyid)
        if actor is None:
            raise Rejected(f"key {key.keyid} is not registered to any party: give --actor or register it",
                           code="unknown_key", field="--key")
    who = ledger.party(actor)
    try:
        keys = [str(parse_code(i)) for i in items]
        cont = str(parse_code(container)) if container else None
    except InvalidIdentifier as exc:
        raise InvalidStatement(str(exc), code=exc.code, field=exc.field) from exc
    fields: dict[str, Any] = {"items": keys}
    if stype in ("aggregate", "disaggregate"):
        if not cont:
            raise InvalidStatement(f"{stype} needs --container (the SSCC of the case or pallet)", field="--container")
        fields["container"] = cont
    if stype == "ship":
        fields["to"] = to
    if stype == "receive":
        fields.update({"from_": from_, "ship": ship})
    private: dict[str, str] = {}
    if stype == "inspect":
        fields["decision"] = decision
        if note:
            from .notes import commit_note

            fields["note_commitment"], private["note_salt"] = commit_note(note)
    if stype == "commission":
        gt = gtin or keys[0].split("/")[1]
        fields["product"] = {"gtin": gt, "name": product_name or "unnamed product", **({"lot": lot} if lot else {})}
    prev = None
    if stype != "commission":  # prev names the latest event of every unit touched (SPEC §7)
        prev = {}
        for k in keys + ([cont] if cont else []):
            if (latest := head(ledger, k)) is not None:
                prev[k] = latest
            elif not (stype == "aggregate" and k == cont):  # only an aggregate's new container has no history
                raise Rejected(f"{k} is not a known item or container", code="unknown_item", field="items")
    now = _now(ledger)
    doc = new_statement(stype, actor=actor, time=parse_time(when, "--time") if when else now.replace(microsecond=0),
                        location={"name": location_name or who.name, "country": country or who.country},
                        prev=prev, **fields)
    result = ledger.append(sign_statement(doc, key), now=now)
    click.echo(json.dumps({"event_id": result.event_id, "leaf_index": result.leaf_index, "created": result.created,
                           **private}))
    if private:
        click.echo(f"note kept off the ledger; store it with: tracker note add {result.event_id} "
                   f"--salt {private['note_salt']} (the note on standard input)", err=True)


@cli.command("import")
@click.argument("file", type=click.File("r"))
def import_(file: IO[str]) -> None:
    """Import envelopes recorded elsewhere (one JSON envelope per line) as evidence, without admission checks.
    Lookups and `verify` still judge every signature."""
    envelopes = [line for line in (l.strip() for l in file) if line]
    ledger = open_ledger()
    bad = 0
    for start in range(0, len(envelopes), 1000):
        for res in ledger.import_envelopes(envelopes[start:start + 1000], now=_now(ledger)):
            if isinstance(res, TrackerError):
                bad += 1
                click.echo(json.dumps({"error": {"code": res.code, "message": res.message}}))
            else:
                click.echo(json.dumps({"event_id": res.event_id, "leaf_index": res.leaf_index}))
    sys.exit(EXIT_REFUSED if bad else 0)


_EXIT_BY_VERDICT = {"genuine": 0, "suspicious": 1, "likely_counterfeit": 2}
_BANNER = {"genuine": "GENUINE", "suspicious": "SUSPICIOUS", "likely_counterfeit": "LIKELY COUNTERFEIT"}


@cli.command()
@click.argument("code", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the SPEC §4 provenance answer.")
def lookup(code: tuple[str, ...], as_json: bool) -> None:
    """Rebuild an item's path and judge it. CODE is a Digital Link URL, an element string, a key, or what is
    printed under the QR code: `GTIN 09506000134352 SN ABC123`, `09506000134352 ABC123`,
    `(01)09506000134352(21)ABC123`. Exit 0 genuine, 1 suspicious, 2 likely_counterfeit, 3 error."""
    from .provenance import lookup as provenance_lookup

    key = parse_code(" ".join(code))
    answer = provenance_lookup(open_ledger(writable=False), key)
    if as_json:
        click.echo(json.dumps(answer.to_json(), indent=1))
    else:
        click.echo(f"{answer.item}  {answer.product['name'] if answer.product else ''}")
        click.echo(f"verdict: {_BANNER[answer.verdict]}")
        for r in answer.reasons:
            click.echo(f"  [{r.severity}] {r.code}: {r.message}")
        click.echo("path:")
        for step in answer.path:
            loc = step.get("location") or {}
            extra = "".join(f" {k}={step[k]}" for k in ("to", "from", "decision") if k in step)
            click.echo(f"  {step['time']}  {step['type']:<12} {step['actor_name']} ({step.get('role')}) "
                       f"@ {loc.get('name', '?')}, {loc.get('country', '?')}{extra}")
        click.echo(f"holder: {answer.holder or '-'}")
    sys.exit(_EXIT_BY_VERDICT[answer.verdict])


@cli.command()
def verify() -> None:
    """Full audit: every signature, leaf, Merkle node, checkpoint and their consistency. Exit 0 only if all hold."""
    ledger = open_ledger(writable=False)
    total = ledger.size()
    with click.progressbar(length=total, label="verifying", file=sys.stderr, show_pos=True) as bar:
        report = ledger.audit(progress=lambda n, _total: bar.update(n))
    from .cosigning import witness_alarms

    alarms = witness_alarms(ledger)
    for alarm in alarms:
        click.echo(f"WITNESS ALARM: {alarm}", err=True)
    if alarms:
        raise IntegrityError(f"{len(alarms)} witness(es) refused this ledger's checkpoints: another history of "
                             "this log may have been shown to them (see above)", code="witness_alarm")
    click.echo(f"ok: {report.entries} entries, {report.checkpoints} checkpoints, {report.parties} parties; "
               f"root {base64.b64encode(report.root_hash).decode()}")


@cli.command()
def checkpoint() -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint)."""
    click.echo(open_ledger(writable=False).checkpoint(), nl=False)


@cli.command("proof")
@click.argument("code")
@click.argument("serial", required=False)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the bundle here (default: stdout).")
def proof(code: str, serial: str | None, out: str | None) -> None:
    """Write an item's proof bundle (docs/proof-bundle.md): its entries, C2SP tlog-proofs against one cosigned
    checkpoint, the log key and the witness policy. Check it anywhere with `tracker verify-proof`."""
    from .cosigning import load_policy
    from .proofbundle import build_bundle

    key = parse_code(f"{code} {serial}" if serial else code)  # what the label prints, or any one code
    bundle = build_bundle(open_ledger(writable=False), key, load_policy(load_config().home))
    text = json.dumps(bundle, indent=1) + "\n"
    if out:
        Path(out).write_text(text)
    else:
        click.echo(text, nl=False)


@cli.command("verify-proof")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, exists=True),
              help="Your own copy of the witness policy (else the bundle's).")
@click.option("--vkey", help="Your own copy of the ledger's verifier key (else the bundle's).")
def verify_proof(file: str, policy_file: str | None, vkey: str | None) -> None:
    """Check a proof bundle offline, as the consumer's phone does. Exit 0 only if everything holds and the
    checkpoint meets the witness policy; 1 otherwise."""
    from .policy import parse_policy
    from .proofbundle import verify_bundle

    try:
        bundle = json.loads(Path(file).read_text())
    except ValueError as exc:
        raise InvalidStatement(f"{file} is not JSON: {exc}", code="invalid_bundle") from exc
    policy = parse_policy(Path(policy_file).read_bytes()) if policy_file else None
    result = verify_bundle(bundle, policy=policy, log_vkey=vkey)
    for step in result.steps:
        click.echo(f"  #{step['leaf_index']:<8} {step['time']}  {step['type']:<12} signed by {step['actor']}")
    click.echo(result.summary())
    sys.exit(0 if result.ok and result.quorum_met else EXIT_REFUSED)


@cli.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-keys", is_flag=True, help="Leave the private key files out (e.g. a copy an auditor only "
                                              "verifies); a restore from it can verify and serve but not append.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def backup_cmd(file: Path, no_keys: bool, force: bool) -> None:
    """Write a consistent online copy of the ledger (and this home's config and keys) to FILE while writes go
    on: SQLite through its backup API, PostgreSQL through pg_dump from one snapshot. FILE holds the private
    keys unless --no-keys: it is written mode 0600; keep it as safe as the keys. Progress goes to stderr."""
    from .backup import backup, describe, write_progress

    info = backup(load_config(), file, now=_now(), include_keys=not no_keys, overwrite=force,
                  progress=write_progress(sys.stderr))
    click.echo(f"backup written: {file} ({describe(info)})")


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def restore_cmd(file: Path) -> None:
    """Restore a `tracker backup` FILE into this home's ledger database, which must be empty (a restore never
    overwrites a ledger). Key files missing from the home are installed from FILE; one that differs is a
    refusal. Afterwards the ledger must serve the checkpoint FILE recorded; run `tracker verify` for the full
    audit. Exit 1 when refused (non-empty ledger, damaged FILE, mismatched keys), 3 on other errors."""
    from .backup import RestoreRefused, describe, restore, write_progress

    try:
        info = restore(load_config(), file, progress=write_progress(sys.stderr))
    except RestoreRefused as exc:
        _fail(exc, EXIT_REFUSED)
    click.echo(f"restored: {describe(info)}")
    click.echo("next: `tracker verify` re-checks every signature and hash")


@cli.command()
@click.option("--items", default=3000, show_default=True, help="Genuine items to create.")
def demo(items: int) -> None:
    """Build the demo network (several countries, thousands of items, known counterfeit cases). Idempotent."""
    from .demo import ensure_demo

    config = load_config()
    with click.progressbar(length=max(1, items // 40), label="building demo", file=sys.stderr) as bar:
        summary = ensure_demo(config, items=items, progress=lambda done, total: bar.update(1))
    click.echo(summary.describe(config.resolver))


def main() -> None:
    cli(prog_name="tracker")


if __name__ == "__main__":
    main()
