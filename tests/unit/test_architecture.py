"""DESIGN.md: dependencies point inward. Walks the source with ``ast`` (imports anywhere in a module,
including inside functions, relative imports resolved, and importlib/__import__ calls with literal names).

- nothing under tracker/ imports flask, web, scanners, or networking code;
- sqlmodel/sqlalchemy (and alembic) are imported only under tracker/store/;
- nacl is imported only by tracker/keys.py;
- web/ and scanners/ never import tracker.store or sqlmodel, and sqlalchemy only in web/db.py: the web side's
  own tables (staff accounts, sessions, private notes) are not the core's business, and the views call
  web.accounts / web.notes, never SQL.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACKER = ROOT / "tracker"
WEB = ROOT / "web"
SCANNERS = ROOT / "scanners"

NETWORKING = {"requests", "httpx", "aiohttp", "urllib3", "socket", "http.client", "urllib.request", "smtplib",
              "ftplib", "websockets"}


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str | None, level: int, importer: Path, root: Path) -> str:
    if level == 0:
        return module or ""
    package = _module_name(importer, root).split(".")
    if importer.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, module] if module else base)


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every module name ``path`` imports (for ``from a import b`` both ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, path, root)
            found.add(base)
            found.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.add(node.args[0].value)
    return found


def _is(module: str, target: str) -> bool:
    return module == target or module.startswith(target + ".")


def _sources(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def _violations(files: list[Path], forbidden: set[str]) -> list[str]:
    out = []
    for path in files:
        for mod in sorted(imports_of(path)):
            if any(_is(mod, f) for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {mod}")
    return out


# --- the walker itself ---------------------------------------------------------------------------

def test_walker_sees_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "tracker" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "tracker" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    mod = pkg / "mod.py"
    mod.write_text(
        "import flask.json as fj\n"
        "from .. import store\n"
        "from ..store.sql import SqlStore\n"
        "from . import sibling\n"
        "def f():\n"
        "    import nacl.signing\n"
        "    importlib.import_module('sqlalchemy')\n"
        "    __import__('web.api')\n"
    )
    found = imports_of(mod, tmp_path)
    for expected in ("flask.json", "tracker", "tracker.store", "tracker.store.sql", "tracker.store.sql.SqlStore",
                     "tracker.sub.sibling", "nacl.signing", "sqlalchemy", "web.api"):
        assert expected in found, (expected, found)
    assert _is("tracker.store.sql", "tracker.store") and not _is("tracker.storefront", "tracker.store")


# --- the rules -----------------------------------------------------------------------------------

def test_tracker_sources_exist() -> None:
    files = _sources(TRACKER)
    names = {p.name for p in files}
    assert {"keys.py", "merkle.py", "ledger.py", "checkpoint.py"} <= names
    assert any(p.parent.name == "store" for p in files)


def test_core_does_not_import_web_scanners_or_flask() -> None:
    assert _violations(_sources(TRACKER), {"flask", "web", "scanners", "werkzeug", "jinja2"}) == []


def test_core_does_not_do_networking() -> None:
    assert _violations(_sources(TRACKER), NETWORKING) == []


def test_sql_is_imported_only_under_tracker_store() -> None:
    outside = [p for p in _sources(TRACKER) if (TRACKER / "store") not in p.parents]
    assert outside, "expected core modules outside tracker/store/"
    assert _violations(outside, {"sqlmodel", "sqlalchemy", "alembic", "sqlite3", "psycopg", "psycopg2"}) == []


def test_nacl_is_imported_only_by_keys() -> None:
    others = [p for p in _sources(TRACKER) if p != TRACKER / "keys.py"]
    assert _violations(others, {"nacl"}) == []
    assert any(_is(m, "nacl") for m in imports_of(TRACKER / "keys.py"))


@pytest.mark.parametrize("directory", [WEB, SCANNERS], ids=["web", "scanners"])
def test_outer_layers_never_touch_storage(directory: Path) -> None:
    if not directory.is_dir():
        pytest.skip(f"{directory.name}/ does not exist yet")
    files = _sources(directory)
    if not files:
        pytest.skip(f"{directory.name}/ has no Python files yet")
    assert _violations(files, {"tracker.store", "sqlmodel"}) == []
    assert _violations([p for p in files if p != WEB / "db.py"], {"sqlalchemy", "alembic"}) == []


def test_web_sql_lives_in_one_module() -> None:
    assert any(_is(m, "sqlalchemy") for m in imports_of(WEB / "db.py"))
