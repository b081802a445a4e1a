"""`scanner`: the handheld client. Scans codes (photos or typed), signs statements on the device with the
device key, and sends them to a Waybill server over the public JSON API — or queues them when offline.

Configuration (options go before or after the command name):
  --server URL   the Waybill server (env WAYBILL_SERVER, default http://127.0.0.1:8000)
  --db PATH      the offline queue (env WAYBILL_SCANNER_HOME: default ~/.waybill-scanner/outbox.db)
  --key PATH     the device key (default: the key `scanner enroll` wrote, ~/.waybill-scanner/device.key)
  --party ID     the party this device signs for (default: remembered from enroll, or looked up by key id)
  Passphrase-protected keys: WAYBILL_KEY_PASSPHRASE or --passphrase-file.

`prev` (SPEC §2): for every key a statement touches, the event id of its latest event as this device knows
it. Online, that is the server's head (GET /items/{gtin}/{serial}/head), unless a record still waiting in the
queue touches the key: then it is that record's event id, because the queue is delivered first and in order.
Offline, only queued records are known: keys they touch link to them; a receive links the rest to the shipment
it answers. A statement that would leave a touched unit out of `prev` is not signed: the ledger refuses it
(SPEC §7), and a guessed or stale head would make a false `fork` or `custody_gap`. Containers' heads come from
the queue or GET /containers/{sscc}/head.

Exit codes: 0 done (sent or queued); 1 refused (the server rejected a record; a code was bad or none found);
2 usage error; 3 any other error (unreadable key or image, server unreachable during `sync`).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import click

from tracker.errors import InvalidIdentifier, InvalidStatement, KeyFileError, TrackerError
from tracker.identifiers import is_container_key, is_item_key
from tracker.keys import KeyPair, generate_keypair, read_key_file, write_key_file
from tracker.signing import new_statement, sign_statement
from tracker.statements import EVENT_ID, PARTY_ID

from .client import DEFAULT_SERVER, ApiClient, ApiError, ServerUnreachable
from .decode import decode_image, read_code
from .labels import label
from .outbox import DELIVERED, PENDING, REJECTED, Delivery, Outbox, deliver

__all__ = ["cli", "main"]

EXIT_REFUSED, EXIT_USAGE, EXIT_ERROR = 1, 2, 3
# A statement may list 1000 keys, but the ledger stores entries of at most 64 KiB (what C2SP tiles serve): with a
# prev link per key, 200 keys stay well inside that. More scans become several statements.
MAX_ITEMS = 200
PROGRESS_FROM = 10  # show a progress bar from this many images / keys / records


def scanner_home(env: Mapping[str, str] | None = None) -> Path:
    found = os.environ if env is None else env
    return Path(found.get("WAYBILL_SCANNER_HOME") or Path.home() / ".waybill-scanner").expanduser()


class Refused(TrackerError):
    """A record the server refused, or a bad scan: exit 1."""

    code = "refused"


@dataclass
class Device:
    """What every command needs, resolved lazily: settings, queue, key, server."""

    server: str | None = None
    db: str | None = None
    key: str | None = None
    party: str | None = None
    passphrase_file: str | None = None
    timeout: float = 5.0
    _outbox: Outbox | None = field(default=None, repr=False)
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return scanner_home()

    @property
    def server_url(self) -> str:
        return self.server or os.environ.get("WAYBILL_SERVER") or DEFAULT_SERVER

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(Path(self.db).expanduser() if self.db else self.home / "outbox.db")
        return self._outbox

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.server_url, timeout=(self.timeout, max(30.0, self.timeout)))
        return self._client

    def key_path(self) -> Path:
        if self.key:
            return Path(self.key).expanduser()
        remembered = self.outbox.setting("key_path")
        return Path(remembered) if remembered else self.home / "device.key"

    def keypair(self) -> KeyPair:
        path = self.key_path()
        if not path.exists():
            raise KeyFileError(f"no device key at {path}: run `scanner enroll` (or give --key FILE)")
        return read_key_file(path, passphrase=_passphrase(self.passphrase_file))

    def close(self) -> None:
        if self._outbox is not None:
            self._outbox.close()
        if self._client is not None:
            self._client.close()


def _passphrase(passphrase_file: str | None) -> str | None:
    """From a file (first line) or WAYBILL_KEY_PASSPHRASE; never from the command line, where ps would show it."""
    if passphrase_file:
        lines = Path(passphrase_file).read_text().splitlines()
        return lines[0] if lines else ""
    return os.environ.get("WAYBILL_KEY_PASSPHRASE") or None


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(ctx.ensure_object(Device), name, value)
    return callback


def device_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--server/--db/--key/--party/--passphrase-file, accepted before or after the command name."""
    options = [
        click.option("--server", expose_value=False, callback=_set("server"), is_eager=True,
                     help="Waybill server URL (env WAYBILL_SERVER; default http://127.0.0.1:8000)."),
        click.option("--db", expose_value=False, callback=_set("db"), is_eager=True,
                     type=click.Path(dir_okay=False),
                     help="Offline queue file (default $WAYBILL_SCANNER_HOME/outbox.db, ~/.waybill-scanner)."),
        click.option("--key", expose_value=False, callback=_set("key"), is_eager=True,
                     type=click.Path(dir_okay=False), help="Device key file (default: the enrolled key)."),
        click.option("--party", expose_value=False, callback=_set("party"), is_eager=True,
                     help="Party id this device signs for (default: remembered, or looked up by key id)."),
        click.option("--passphrase-file", expose_value=False, callback=_set("passphrase_file"), is_eager=True,
                     type=click.Path(dir_okay=False, exists=True),
                     help="File whose first line opens a passphrase-protected key (else WAYBILL_KEY_PASSPHRASE)."),
        click.option("--timeout", expose_value=False, callback=_set("timeout"), is_eager=True, type=float,
                     help="Seconds to wait for the server to answer a connection (default 5)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


class _Group(click.Group):
    """Turns TrackerError into one line on stderr and a documented exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Refused as exc:
            _fail(exc, EXIT_REFUSED)
        except (InvalidIdentifier, InvalidStatement) as exc:
            _fail(exc, EXIT_REFUSED)
        except TrackerError as exc:
            _fail(exc, EXIT_ERROR)
        finally:
            device = ctx.find_object(Device)
            if device is not None:
                device.close()


def _fail(exc: TrackerError, code: int) -> None:
    click.echo(f"error: {exc.code}: {exc.message}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@device_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Waybill handheld scanner: scan codes, sign custody statements on this device, send or queue them.

    \b
    scanner enroll --out device.key --name "dock 3" --party pearl-export
    scanner ship --to hh-warehouse --image pallet.jpg
    scanner receive --code '(01)09506000134352(21)ABC123'
    scanner sync           # deliver what was queued while offline
    """
    ctx.ensure_object(Device)


cli.add_command(label)


def _add_epcis() -> None:
    from .epcis import epcis  # EPCIS 2.0 documents over the public API (scanners/epcis.py)

    cli.add_command(epcis)


# --- enroll ----------------------------------------------------------------------------------------

@cli.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Key file to write (default "
                                                               "$WAYBILL_SCANNER_HOME/device.key), mode 0600.")
@click.option("--name", help="A name for this device (e.g. 'dock 3 handheld'), shown to the admin.")
@click.option("--force", is_flag=True, help="Replace an existing key file (the old key is lost).")
@click.option("--encrypt", is_flag=True, help="Protect the private key with a passphrase (asked for, or "
                                              "--passphrase-file / WAYBILL_KEY_PASSPHRASE).")
@device_options
@click.pass_obj
def enroll(device: Device, out: str | None, name: str | None, force: bool, encrypt: bool) -> None:
    """Make this device's key pair and print what the admin registers. The private key stays on the device."""
    path = Path(out).expanduser() if out else device.home / "device.key"
    passphrase = _passphrase(device.passphrase_file) if encrypt else None
    if encrypt and not passphrase:
        passphrase = click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    pair = generate_keypair()
    write_key_file(path, pair, passphrase=passphrase, overwrite=force)
    outbox = device.outbox
    outbox.set_setting("key_path", str(path.resolve()))
    if name:
        outbox.set_setting("device_name", name)
    if device.party:
        if not PARTY_ID.match(device.party):
            raise InvalidIdentifier(f"--party {device.party!r} is not a party id like acme-cn")
        outbox.set_setting("party", device.party)
    click.echo(f"device key: {path} (mode 0600){f' for {name!r}' if name else ''}")
    click.echo(f"keyid: {pair.keyid}")
    click.echo(f"public_key: {pair.public_key_b64}")
    party = device.party or "<party-id>"
    click.echo("Ask the admin to register it (the private key never leaves this device):")
    click.echo(f"  tracker party add {party} --name ... --country .. --role ... --key {pair.public_key_b64} "
               "--admin-key <admin.key>")


# --- decode ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Scan:
    keys: list[str]
    errors: list[str]
    rows: list[dict[str, Any]]


def _progress(items: Sequence[Any], label_text: str) -> Any:
    if len(items) >= PROGRESS_FROM:
        return click.progressbar(items, label=label_text, file=sys.stderr, show_pos=True)
    return _NoBar(items)


class _NoBar:
    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items

    def __enter__(self) -> Sequence[Any]:
        return self.items

    def __exit__(self, *exc: object) -> None:
        return None


def _scan_images(images: Sequence[str], *, thorough: bool = False) -> _Scan:
    keys: list[str] = []
    errors: list[str] = []
    rows: list[dict[str, Any]] = []
    with _progress(images, "decoding images") as bar:
        for path in bar:
            try:
                found = decode_image(path, exhaustive=thorough)
            except TrackerError as exc:
                errors.append(f"{path}: {exc.message}")
                rows.append({"file": path, "format": None, "position": None, "text": None, "key": None,
                             "error": exc.message})
                continue
            if not found:
                errors.append(f"{path}: no QR or DataMatrix code found")
                rows.append({"file": path, "format": None, "position": None, "text": None, "key": None,
                             "error": "no QR or DataMatrix code found"})
            for d in found:
                rows.append(d.to_json(file=path))
                if d.error:
                    errors.append(f"{path}: {d.error}")
                else:
                    keys.append(d.key)  # type: ignore[arg-type]
    return _Scan(keys=keys, errors=errors, rows=rows)


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per code (JSON Lines): file, format, position, text, key, error.")
@click.option("--thorough", is_flag=True, help="Run every image-enhancement pass (slower; finds codes the quick "
                                               "passes do not even see).")
def decode(images: tuple[str, ...], as_json: bool, thorough: bool) -> None:
    """Print the canonical key of every QR / GS1 DataMatrix code in IMAGES, one per line.
    Exit 1 when a code is not a valid GS1 item/container code or an image has none."""
    scan = _scan_images(list(images), thorough=thorough)
    if as_json:
        for row in scan.rows:
            click.echo(json.dumps(row, ensure_ascii=False))
    else:
        for key in scan.keys:
            click.echo(key)
    for err in scan.errors:
        click.echo(f"error: {err}", err=True)
    if scan.errors:
        sys.exit(EXIT_REFUSED)


# --- recording statements --------------------------------------------------------------------------

def _collect_keys(codes: Iterable[str], images: Sequence[str], *, thorough: bool = False) -> list[str]:
    """Every scanned key, in scan order, once. Any bad code or codeless image stops here: nothing is signed."""
    keys: list[str] = []
    errors: list[str] = []
    for code in codes:
        try:
            keys.append(read_code(code).key)
        except InvalidIdentifier as exc:
            errors.append(f"--code {exc.message}")
    if images:
        scan = _scan_images(images, thorough=thorough)
        keys.extend(scan.keys)
        errors.extend(scan.errors)
    if errors:
        for err in errors:
            click.echo(f"error: {err}", err=True)
        raise Refused(f"{len(errors)} bad or unreadable code(s): nothing was signed; rescan or fix and retry",
                      code="bad_scan")
    unique: list[str] = []
    for k in keys:
        if k in unique:
            click.echo(f"note: {k} was scanned more than once; listed once", err=True)
        else:
            unique.append(k)
    if not unique:
        raise click.UsageError("scan something: give --image PHOTO or --code CODE (repeatable)")
    return unique


@dataclass
class _Session:
    """One recording command: who signs, where, and whether the server answers."""

    device: Device
    keypair: KeyPair
    party: str
    location: dict[str, str]
    online: bool
    offline_reason: str | None = None


def _open_session(device: Device, *, location_name: str | None, country: str | None) -> _Session:
    keypair = device.keypair()
    outbox = device.outbox
    client = device.client
    party = device.party or outbox.setting("party")
    online, reason = True, None
    info: dict[str, Any] | None = None
    try:
        if party is None:
            party = _party_for_key(client.parties(), keypair.keyid)
            if party is None:
                raise Refused(f"key {keypair.keyid} is not registered to any party on {client.server}: ask the admin "
                              "to register it (see `scanner enroll`), or give --party", code="unknown_key")
        info = client.party(party)
    except ServerUnreachable as exc:
        online, reason = False, exc.message
    except ApiError as exc:
        if exc.status == 404:
            raise Refused(f"party {party!r} is not registered on {client.server}", code="unknown_party") from None
        if exc.retryable:
            online, reason = False, exc.message
        else:
            raise
    if party is None:
        raise click.UsageError(f"offline ({reason}) and this device does not know its party yet: give --party ID")
    if not PARTY_ID.match(party):
        raise InvalidIdentifier(f"--party {party!r} is not a party id like acme-cn")
    if info is not None:
        if not any(k.get("keyid") == keypair.keyid for k in info.get("keys", [])):
            click.echo(f"warning: key {keypair.keyid} is not (yet) a key of {party}: the server will refuse what it "
                       "signs until the admin registers it", err=True)
        outbox.set_setting("party", party)
        outbox.set_setting(f"party_info:{party}", {"name": info.get("name"), "country": info.get("country")})
    if device.party:
        outbox.set_setting("party", party)
    # The location: given now, else the one last given on this device (it stays where it was put), else the
    # party's own name and country (fetched online, remembered for offline use).
    saved = outbox.setting(f"location:{party}") or {}
    cached = outbox.setting(f"party_info:{party}") or {}
    name = location_name or saved.get("name") or cached.get("name")
    ctry = (country or saved.get("country") or cached.get("country") or "").upper() or None
    if not name or not ctry:
        raise click.UsageError(f"offline ({reason}) and the location of {party} is not known yet: give --location "
                               "NAME --country CC")
    if location_name or country:
        outbox.set_setting(f"location:{party}", {"name": name, "country": ctry})
    return _Session(device=device, keypair=keypair, party=party, location={"name": name, "country": ctry},
                    online=online, offline_reason=reason)


def _party_for_key(parties: Iterable[dict[str, Any]], keyid: str) -> str | None:
    for p in parties:
        if any(k.get("keyid") == keyid for k in p.get("keys", [])):
            return p.get("id")
    return None


def _flush(session: _Session) -> list[Delivery]:
    """Before anything new: deliver what is already queued, in order (new records must not overtake it)."""
    if not session.online or not session.device.outbox.pending():
        return []
    report = deliver(session.device.outbox, session.device.client, retries=1, backoff=0.5)
    for d in report.deliveries:
        _echo_delivery(d)
    if report.stopped is not None:
        session.online = False
        session.offline_reason = report.stopped.message
    return list(report.deliveries)


def _prev(session: _Session, keys: Sequence[str]) -> dict[str, str]:
    """prev for ``keys``: queued records first (they will be delivered before this one), then the server's heads."""
    prev = session.device.outbox.local_heads(keys)
    if not session.online:
        return prev
    remaining = [k for k in keys if k not in prev]
    try:
        with _progress(remaining, "fetching heads") as bar:
            for k in bar:
                head = session.device.client.head(k)
                if head is not None:
                    prev[k] = head
    except (ServerUnreachable, ApiError) as exc:
        if isinstance(exc, ApiError) and not exc.retryable:
            raise
        # Gone or too busy to answer: sign with what the queue knows, and queue it like any offline scan.
        session.online, session.offline_reason = False, exc.message
        return session.device.outbox.local_heads(keys)
    return prev


def _echo_delivery(d: Delivery) -> None:
    r = d.record
    if d.outcome in ("created", "duplicate", "stored"):
        click.echo(f"#{r.seq} {d.outcome:<9} {r.type} {r.event_id} leaf {d.leaf_index}")
    elif d.outcome == "rejected":
        click.echo(f"#{r.seq} rejected  {r.type} {r.event_id} {d.code}: {d.message}")
    else:
        click.echo(f"#{r.seq} queued    {r.type} {r.event_id} ({d.code}: {d.message})")


def _record(device: Device, stype: str, *, codes: Sequence[str], images: Sequence[str], location_name: str | None,
            country: str | None, container: str | None = None, thorough: bool = False,
            build: Callable[[_Session, list[str]], dict[str, Any]] | None = None,
            signed: list[Any] | None = None) -> bool:
    """Scan, sign (≤ 200 keys per statement), queue durably, then deliver when the server answers. Each signed
    envelope is appended to ``signed``; returns whether the server was reachable."""
    keys = _collect_keys(codes, images, thorough=thorough)
    container_key: str | None = None
    if container is not None:
        container_key = read_code(container).key
        if not is_container_key(container_key):
            raise InvalidIdentifier(f"--container {container!r} is not a container (SSCC) code")
        keys = [k for k in keys if k != container_key]  # scanning the pallet label too is harmless
        if not keys:
            raise click.UsageError("scan the items that go in (or come out of) the container")
    if stype == "sell" and any(not is_item_key(k) for k in keys):
        raise click.UsageError("only items (not containers) can be sold: scan the item codes")
    session = _open_session(device, location_name=location_name, country=country)
    flushed = _flush(session)
    extra = build(session, keys) if build is not None else {}
    outbox = device.outbox
    queued = []
    for start in range(0, len(keys), MAX_ITEMS):
        chunk = keys[start:start + MAX_ITEMS]
        touched = chunk + ([container_key] if container_key else [])
        prev = _prev(session, touched)
        if stype == "receive" and extra.get("ship"):
            # What is received was last shipped: where the device knows no later event, the shipment it answers
            # is the unit's latest (this lets a dock receive offline).
            prev = {k: prev.get(k, extra["ship"]) for k in touched}
        unknown = [k for k in touched if k not in prev and not (stype == "aggregate" and k == container_key)]
        if unknown:
            why = "offline, and this device has not seen" if not session.online else "the server has no record of"
            raise Refused(f"{why} the latest event of {unknown[0]}: the ledger needs it in `prev`. Scan it once "
                          "online (or `scanner sync`) first.", code="unknown_head")
        fields: dict[str, Any] = dict(extra, items=chunk)
        if container_key:
            fields["container"] = container_key
        doc = new_statement(stype, actor=session.party, time=datetime.now(timezone.utc).replace(microsecond=0),
                            location=session.location, prev=prev, **fields)
        envelope = sign_statement(doc, session.keypair)
        if signed is not None:
            signed.append(envelope)
        summary = _summary(stype, chunk, container_key, extra)
        queued.append(outbox.add(envelope, stype=stype, actor=session.party, keys=touched, summary=summary))
        click.echo(f"signed {stype} {envelope.event_id}: {summary} (as {session.party} at "
                   f"{session.location['name']}, {session.location['country']}; key {session.keypair.keyid})")
    rejected = [d for d in flushed if d.outcome == "rejected"]
    if session.online:
        report = deliver(outbox, device.client, retries=2, backoff=0.5)
        for d in report.deliveries:
            _echo_delivery(d)
        rejected += [d for d in report.deliveries if d.outcome == "rejected"]
        if report.stopped is not None:
            session.online, session.offline_reason = False, report.stopped.message
    if not session.online:
        waiting = outbox.counts()[PENDING]
        for rec in queued:
            if outbox.get(rec.seq).status == PENDING:
                click.echo(f"queued (offline): #{rec.seq} {rec.type} {rec.event_id}")
        click.echo(f"server unreachable ({session.offline_reason}); {waiting} record(s) waiting: run `scanner sync` "
                   "when back online")
    if rejected:
        raise Refused(f"the server refused {len(rejected)} record(s); they are kept in the queue "
                      "(`scanner queue`)", code="rejected")
    return session.online


def _summary(stype: str, keys: Sequence[str], container: str | None, extra: dict[str, Any]) -> str:
    what = keys[0] if len(keys) == 1 else f"{len(keys)} keys"
    if stype == "ship":
        return f"{what} to {extra['to']}"
    if stype == "receive":
        return f"{what} from {extra['from_']}"
    if stype == "inspect":
        return f"{what} {extra['decision']}"
    if stype in ("aggregate", "disaggregate"):
        return f"{what} {'into' if stype == 'aggregate' else 'out of'} {container}"
    return what


def scan_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False),
                     help="Photo with QR / DataMatrix codes; repeatable."),
        click.option("--code", "codes", multiple=True,
                     help="A typed or pasted code: Digital Link URL, element string or key; repeatable."),
        click.option("--location", "location_name", help="Where this happens (remembered for later scans; default: "
                                                         "the party's name)."),
        click.option("--country", help="ISO country code of the location (remembered; default: the party's "
                                       "country)."),
        click.option("--thorough", is_flag=True, help="Run every image-enhancement pass when decoding photos."),
    ]
    for option in reversed(options):
        f = option(f)
    return device_options(f)


def _party_arg(value: str | None, name: str) -> str | None:
    if value is not None and not PARTY_ID.match(value):
        raise click.BadParameter(f"{value!r} is not a party id like hh-warehouse", param_hint=name)
    return value


@cli.command()
@click.option("--to", "to", required=True, help="The party the goods are handed to.")
@scan_options
@click.pass_obj
def ship(device: Device, to: str, codes: tuple[str, ...], images: tuple[str, ...], location_name: str | None,
         country: str | None, thorough: bool) -> None:
    """Offer custody of the scanned items / containers to party --to."""
    _party_arg(to, "--to")
    _record(device, "ship", codes=codes, images=images, location_name=location_name, country=country,
            thorough=thorough, build=lambda s, keys: {"to": to})


@cli.command()
@click.option("--from", "from_", help="The shipping party (default: the shipment's signer).")
@click.option("--ship", "ship_id", help="Event id of the shipment (default, online: the latest shipment of the "
                                        "first scanned item to this party).")
@scan_options
@click.pass_obj
def receive(device: Device, from_: str | None, ship_id: str | None, codes: tuple[str, ...], images: tuple[str, ...],
            location_name: str | None, country: str | None, thorough: bool) -> None:
    """Accept custody of the scanned items / containers from a shipment."""
    _party_arg(from_, "--from")
    if ship_id is not None and not EVENT_ID.match(ship_id):
        raise click.BadParameter(f"{ship_id!r} is not an event id sha256:<64 hex>", param_hint="--ship")

    def build(session: _Session, keys: list[str]) -> dict[str, Any]:
        ship_event, sender = ship_id, from_
        if ship_event is None or sender is None:
            if not session.online:
                raise click.UsageError(f"offline ({session.offline_reason}): give --ship EVENT_ID and --from PARTY")
            ship_event, sender = _find_shipment(session, keys, ship_event, sender)
        return {"from_": sender, "ship": ship_event}

    _record(device, "receive", codes=codes, images=images, location_name=location_name, country=country,
            thorough=thorough, build=build)


def _find_shipment(session: _Session, keys: Sequence[str], ship_id: str | None,
                   sender: str | None) -> tuple[str, str]:
    client = session.device.client
    if ship_id is not None:
        statement = client.event(ship_id).get("statement", {})
        if statement.get("type") != "ship":
            raise Refused(f"{ship_id} is a {statement.get('type')} event, not a shipment", code="not_a_shipment")
        if statement.get("to") != session.party:
            click.echo(f"warning: shipment {ship_id} was addressed to {statement.get('to')}, not {session.party}",
                       err=True)
        return ship_id, sender or statement["actor"]
    item = next((k for k in keys if is_item_key(k)), None)
    if item is None:
        raise click.UsageError("give --ship EVENT_ID (and --from PARTY): shipments of containers cannot be looked up")
    _, gtin, _, serial = item.split("/", 3)
    path = client.item(gtin, serial).get("path", [])
    for step in reversed(path):
        if step.get("type") == "ship" and step.get("to") == session.party:
            if sender is not None and step.get("actor") != sender:
                continue
            return step["event_id"], step["actor"]
    raise Refused(f"no shipment of {item} to {session.party} is on record: give --ship EVENT_ID", code="no_shipment")


@cli.command()
@click.option("--decision", required=True, type=click.Choice(["released", "held", "seized"]))
@click.option("--note", help="A private note (e.g. the reason for holding): only its salted commitment is signed; "
                              "the note goes to the server's private notes store, never onto the public ledger.")
@scan_options
@click.pass_obj
def inspect(device: Device, decision: str, note: str | None, codes: tuple[str, ...], images: tuple[str, ...],
            location_name: str | None, country: str | None, thorough: bool) -> None:
    """Record a customs decision on the scanned items / containers."""
    from tracker.notes import commit_note

    commitment, salt = commit_note(note) if note else (None, "")
    signed: list[Any] = []
    online = _record(device, "inspect", codes=codes, images=images, location_name=location_name, country=country,
                     thorough=thorough, signed=signed,
                     build=lambda s, keys: {"decision": decision, "note_commitment": commitment})
    if note is not None:
        for envelope in signed:
            try:
                if not online:
                    raise ServerUnreachable("offline")
                device.client.post_note(envelope.event_id, note=note, salt=salt)
                click.echo(f"note delivered privately for {envelope.event_id}")
            except (ApiError, ServerUnreachable) as exc:
                click.echo(f"note not delivered ({exc}); once {envelope.event_id} is on the server, deliver it with: "
                           f"POST /api/v1/notes {{\"event_id\": \"{envelope.event_id}\", \"salt\": \"{salt}\", "
                           f"\"note\": ...}}", err=True)


@cli.command()
@click.option("--container", required=True, help="The case / pallet: SSCC, (00) element string or Digital Link.")
@scan_options
@click.pass_obj
def aggregate(device: Device, container: str, codes: tuple[str, ...], images: tuple[str, ...],
              location_name: str | None, country: str | None, thorough: bool) -> None:
    """Pack the scanned items into --container."""
    _record(device, "aggregate", codes=codes, images=images, location_name=location_name, country=country,
            container=container, thorough=thorough)


@cli.command()
@click.option("--container", required=True, help="The case / pallet: SSCC, (00) element string or Digital Link.")
@scan_options
@click.pass_obj
def disaggregate(device: Device, container: str, codes: tuple[str, ...], images: tuple[str, ...],
                 location_name: str | None, country: str | None, thorough: bool) -> None:
    """Unpack the scanned items from --container."""
    _record(device, "disaggregate", codes=codes, images=images, location_name=location_name, country=country,
            container=container, thorough=thorough)


@cli.command()
@scan_options
@click.pass_obj
def sell(device: Device, codes: tuple[str, ...], images: tuple[str, ...], location_name: str | None,
         country: str | None, thorough: bool) -> None:
    """Record the scanned items as sold to a consumer (retailers)."""
    _record(device, "sell", codes=codes, images=images, location_name=location_name, country=country,
            thorough=thorough)


# --- queue -----------------------------------------------------------------------------------------

@cli.command()
@click.option("--retries", default=4, show_default=True, type=click.IntRange(0, 20),
              help="Retries per record when the server is unreachable or busy.")
@click.option("--backoff", default=0.5, show_default=True, type=click.FloatRange(0, 60),
              help="First retry delay in seconds; doubles each retry (at most 30 s).")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 1000),
              help="Records per request (>1 uses POST /events/batch; results then say 'stored').")
@device_options
@click.pass_obj
def sync(device: Device, retries: int, backoff: float, batch: int) -> None:
    """Deliver queued records in order and report each: created, duplicate (already stored), or rejected
    (kept with its error, not retried; see `scanner queue`). Exit 0 all sent, 1 some rejected, 3 server
    unreachable (what is left stays queued)."""
    outbox = device.outbox
    pending = outbox.pending()
    if not pending:
        counts = outbox.counts()
        click.echo(f"nothing to send ({counts[DELIVERED]} delivered, {counts[REJECTED]} rejected in the queue)")
        return
    lines: list[Delivery] = []
    show_bar = len(pending) >= PROGRESS_FROM
    if show_bar:
        with click.progressbar(length=len(pending), label="sending", file=sys.stderr, show_pos=True) as bar:
            def delivered(d: Delivery) -> None:
                lines.append(d)
                bar.update(1)

            report = deliver(outbox, device.client, retries=retries, backoff=backoff, batch=batch,
                             on_delivery=delivered)
    else:
        report = deliver(outbox, device.client, retries=retries, backoff=backoff, batch=batch,
                         on_delivery=_echo_delivery)
    for d in lines:
        _echo_delivery(d)
    created, dup, stored = report.count("created"), report.count("duplicate"), report.count("stored")
    rejected = report.count("rejected")
    parts = [f"{created} created", f"{dup} duplicate"] + ([f"{stored} stored"] if stored else [])
    click.echo(f"sent {created + dup + stored} ({', '.join(parts)}), rejected {rejected}, "
               f"still queued {report.remaining}")
    if report.stopped is not None:
        _echo_delivery(report.stopped)
        raise ServerUnreachable(f"{device.client.server}: {report.stopped.message}; {report.remaining} record(s) "
                                "still queued: run `scanner sync` again later")
    if rejected:
        raise Refused(f"{rejected} record(s) rejected by the server; they are kept (`scanner queue`), not retried",
                      code="rejected")


@cli.command("queue")
@click.option("--all", "show_all", is_flag=True, help="Include delivered records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record.")
@click.option("--requeue", type=int, metavar="SEQ", help="Put rejected record #SEQ back in the queue.")
@click.option("--discard", type=int, metavar="SEQ", help="Delete rejected record #SEQ for good.")
@device_options
@click.pass_obj
def queue_(device: Device, show_all: bool, as_json: bool, requeue: int | None, discard: int | None) -> None:
    """List the offline queue: pending and rejected records (with --all, delivered ones too)."""
    outbox = device.outbox
    if requeue is not None:
        rec = outbox.requeue(requeue)
        click.echo(f"#{rec.seq} {rec.type} {rec.event_id} is pending again: run `scanner sync`")
        return
    if discard is not None:
        rec = outbox.discard(discard)
        click.echo(f"#{rec.seq} {rec.type} {rec.event_id} discarded")
        return
    statuses = (PENDING, REJECTED, DELIVERED) if show_all else (PENDING, REJECTED)
    records = outbox.records(statuses=statuses)
    for r in records:
        if as_json:
            click.echo(json.dumps(r.to_json()))
            continue
        line = f"#{r.seq:<4} {r.status:<9} {r.type:<12} {r.event_id}  {r.summary}  attempts {r.attempts}"
        if r.status == DELIVERED:
            line += f"  {r.result} leaf {r.leaf_index}"
        elif r.error_code:
            line += f"  {'error' if r.status == REJECTED else 'last error'} {r.error_code}: {r.error_message}"
        click.echo(line)
    if not as_json:
        counts = outbox.counts()
        click.echo(f"{counts[PENDING]} pending, {counts[REJECTED]} rejected, {counts[DELIVERED]} delivered")


_add_epcis()


def main() -> None:
    cli(prog_name="scanner")


if __name__ == "__main__":
    main()
