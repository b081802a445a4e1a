"""``tracker mirror --from URL``: copy a ledger through its tiles, verify everything (tracker.mirror), cosign
it as a C2SP tlog-mirror, and serve the same consumer pages and API read-only from the copy.

The mirror lives in WAYBILL_HOME like a ledger (database: WAYBILL_DATABASE_URL or SQLite there), with its own
key (keys/mirror.key) and ``mirror.json`` (source URL, log verifier key, mirror name)."""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import requests

from tracker.errors import IntegrityError, TrackerError

__all__ = ["mirror", "HttpTileSource"]


class HttpTileSource:
    """A tiled log at ``prefix`` (e.g. http://ledger.example/tlog)."""

    def __init__(self, prefix: str, *, timeout: float = 30.0) -> None:
        self.prefix = prefix.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout

    def _get(self, path: str, *, attempts: int = 6) -> requests.Response:
        """GET one resource; a source that says "too busy" (429/503) is waited for as its Retry-After asks
        (at most a minute a time, ``attempts`` times) rather than treated as gone."""
        for attempt in range(attempts):
            r = self.session.get(f"{self.prefix}/{path}", timeout=self.timeout,
                                 headers={"Accept-Encoding": "gzip, identity"})
            if r.status_code not in (429, 503) or attempt == attempts - 1:
                break
            retry = r.headers.get("Retry-After", "")
            time.sleep(min(60.0, float(retry)) if retry.isdigit() else min(60.0, 2.0 ** attempt))
        if r.status_code != 200:
            raise TrackerError(f"GET {self.prefix}/{path}: HTTP {r.status_code}", code="source_unavailable")
        return r

    def checkpoint(self) -> str:
        return self._get("checkpoint").content.decode("utf-8")

    def tile(self, path: str) -> bytes:
        return self._get(path).content


def tiles_prefix(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/tlog") else url + "/tlog"


def _open(source: str | None, vkey: str | None, name: str | None, policy_file: str | None) -> tuple[Any, dict]:
    from tracker.checkpoint import parse_vkey
    from tracker.config import load_config
    from tracker.home import read_passphrase
    from tracker.keys import generate_keypair, read_key_file, write_key_file
    from tracker.mirror import Mirror, open_mirror_store
    from tracker.policy import parse_policy

    config = load_config()
    conf_path = config.home / "mirror.json"
    conf: dict[str, Any] = json.loads(conf_path.read_text()) if conf_path.is_file() else {}
    conf.update({k: v for k, v in (("from", source), ("vkey", vkey), ("name", name), ("policy", policy_file)) if v})
    policy = parse_policy(Path(conf["policy"]).read_bytes()) if conf.get("policy") else None
    if not conf.get("vkey") and policy is not None and policy.logs:
        conf["vkey"] = policy.logs[0].vkey
    missing = [k for k in ("from", "vkey", "name") if not conf.get(k)]
    if missing:
        raise click.UsageError(f"the first run needs --{' --'.join(missing)} (kept in {conf_path} afterwards)")
    key_path = config.keys_dir / "mirror.key"
    if key_path.exists():
        key = read_key_file(key_path, passphrase=read_passphrase())
    else:
        config.keys_dir.mkdir(parents=True, exist_ok=True)
        key = generate_keypair()
        write_key_file(key_path, key, passphrase=read_passphrase())
    config.home.mkdir(parents=True, exist_ok=True)
    conf_path.write_text(json.dumps(conf, indent=1) + "\n")
    store = open_mirror_store(config.database_url)
    m = Mirror(store, log=parse_vkey(conf["vkey"]), name=conf["name"], key=key, policy=policy,
               source_url=conf["from"])
    return m, conf


@click.command("mirror")
@click.option("--from", "source", help="The ledger's base URL (its tiles are under /tlog).")
@click.option("--vkey", help="The ledger's verifier key (first run; or the policy's log line).")
@click.option("--name", help="This mirror's cosigner name, e.g. mirror.example.org/m1 (first run).")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, exists=True),
              help="A C2SP tlog-policy file: mirror only checkpoints that meet its witness quorum.")
@click.option("--once", is_flag=True, help="Sync once and exit (exit 1 on a split view or a bad entry).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between syncs.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Serve the copy on this address.")
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535))
def mirror(source: str | None, vkey: str | None, name: str | None, policy_file: str | None, once: bool,
           interval: float, host: str, port: int) -> None:
    """Copy a ledger through its tiles, verify every entry, hash and signature, cosign it, serve it read-only."""
    from tracker.cosignature import cosigner_vkey

    try:
        m, conf = _open(source, vkey, name, policy_file)
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    src = HttpTileSource(tiles_prefix(conf["from"]))
    click.echo(f"mirror {conf['name']} of {m.log.name} from {src.prefix}", err=True)
    click.echo(f"mirror vkey: {cosigner_vkey(conf['name'], m.key.public_key)}", err=True)

    def step() -> None:
        result = m.sync(src)
        if result.size != result.old_size:
            rate = (result.size - result.old_size) / max(result.seconds, 1e-9)
            click.echo(f"mirrored {result.old_size} -> {result.size} entries in {result.seconds:.1f} s "
                       f"({rate:,.0f} entries/s); witnesses: {', '.join(result.witnessed_by) or '-'}", err=True)

    def loud(exc: TrackerError) -> None:
        click.echo(f"MIRROR STOPPED: {exc.code}: {exc.message}", err=True)

    if once:
        try:
            step()
        except IntegrityError as exc:
            loud(exc)
            sys.exit(1)
        except TrackerError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"ok: {m.size()} entries", err=True)
        return

    from web import create_app
    from web.cli import _check_port, _serve_forever

    _check_port(host, port)
    halted = threading.Event()

    def loop() -> None:
        while not halted.is_set():
            try:
                step()
            except IntegrityError as exc:  # a split view or a bad entry: stop mirroring, keep serving what was verified
                loud(exc)
                return
            except TrackerError as exc:
                click.echo(f"mirror: {exc.message} (retrying)", err=True)
            except requests.RequestException as exc:
                click.echo(f"mirror: source unreachable ({type(exc).__name__}), retrying", err=True)
            halted.wait(interval)

    threading.Thread(target=loop, daemon=True, name="waybill-mirror").start()
    app = create_app({"LEDGER": m.ledger(), "WAYBILL_WITNESS_POLICY": m.policy, "WAYBILL_WITNESSING": "0"})
    click.echo(f"serving the mirror read-only on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    try:
        _serve_forever(app, host, port)
    finally:
        halted.set()
        time.sleep(0)
