"""Scanners are clients: they speak the public JSON API and sign on the device. They never reach into the
ledger, its storage or the web app (DESIGN: dependencies point inward)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SCANNERS = Path(__file__).resolve().parents[2] / "scanners"
FORBIDDEN = ("tracker.store", "tracker.ledger", "tracker.home", "tracker.provenance", "tracker.cli",
             "tracker.demo", "tracker.scenarios", "sqlalchemy", "sqlmodel", "flask", "web")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_scanner_modules_import_only_pure_core_modules() -> None:
    files = sorted(SCANNERS.glob("*.py"))
    assert {f.name for f in files} >= {"cli.py", "client.py", "decode.py", "labels.py", "outbox.py"}
    for f in files:
        bad = sorted(n for n in _imports(f) if n.startswith(FORBIDDEN))
        assert not bad, f"{f.name} imports {bad}"


def test_loading_the_scanner_pulls_in_no_ledger_or_web_code() -> None:
    code = ("import sys, scanners.cli, scanners.labels, scanners.decode, scanners.client, scanners.outbox\n"
            f"bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
