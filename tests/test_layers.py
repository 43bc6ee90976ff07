"""The layer rule, checked on the source so it stays true: data flows one way,
UI/API -> service (classifier) and read side (dashboards) -> storage (feedback).

Each rule names who may not import what; an exception is written here with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("classifier", "feedback", "dashboards", "ui", "api")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[dotted.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(module imported, names taken from it) for every import statement, nested ones too."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = tuple(alias.name for alias in node.names)
            out.append((node.module, names))
            # `from classifier.versions import registry` imports the module registry
            out.extend((f"{node.module}.{n}", ()) for n in names
                       if f"{node.module}.{n}" in MODULES)
    return out


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


# (who, may not import, except these imports: reason)
RULES: list[tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]] = [
    # Storage knows nothing above it, nor of the model or the web.
    (("feedback",), ("classifier", "dashboards", "ui", "api", "gradio", "fastapi", "starlette",
                     "sklearn", "plotly"), {}),
    # The service side never reaches up to the web.
    (("classifier",), ("ui", "api", "gradio", "fastapi", "starlette", "plotly", "dashboards"),
     {"dashboards.queries": "AUTO_PROMOTE (classifier.versions.autopromote) decides on the "
                            "live figures the read side computes"}),
    # The read side only reads: the registry's reads and the drift profile of the model.
    (("dashboards",), ("ui", "api", "gradio", "fastapi", "starlette", "classifier"),
     {"classifier.versions.registry": "which versions are live, when a canary started",
      "classifier.versions": "the package of registry",
      "classifier.model.profile": "drift compares traffic with a version's profile"}),
    # The two front ends do not lean on each other, and never open database sessions.
    (("ui",), ("api", "sqlalchemy", "feedback.tables"), {}),
    (("api",), ("ui", "sqlalchemy", "feedback.tables"), {}),
]


@pytest.mark.parametrize("who, banned, allowed", RULES, ids=[r[0][0] for r in RULES])
def test_imports_go_one_way(who: tuple[str, ...], banned: tuple[str, ...],
                            allowed: dict[str, str]) -> None:
    wrong = [f"{module} imports {target}"
             for module, path in MODULES.items() if _under(module, *who)
             for target, _ in _imports(path)
             if _under(target, *banned) and target not in allowed]
    assert wrong == []


def test_front_ends_never_open_database_sessions() -> None:
    """ui/ and api/ reach the database only through the service and storage functions."""
    wrong = [f"{module} takes {name} from feedback.db"
             for module, path in MODULES.items() if _under(module, "ui", "api")
             for target, names in _imports(path) if target == "feedback.db"
             for name in names if name in ("session_scope", "get_engine", "engine_for")]
    assert wrong == []


def _registry_writes() -> set[str]:
    """Registry functions that change something: every one records who did it (`actor`)."""
    tree = ast.parse(MODULES["classifier.versions.registry"].read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(a.arg == "actor" for a in node.args.kwonlyargs + node.args.args)}


def test_the_read_side_never_changes_what_serves() -> None:
    writes = _registry_writes()
    assert {"promote", "rollback"} <= writes  # the rule sees the registry's writes
    wrong = [f"{module} calls registry.{node.attr}"
             for module, path in MODULES.items() if _under(module, "dashboards")
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.value.id == "registry" and node.attr in writes]
    assert wrong == []


REGISTRY_TABLES = ("ModelVersion", "ModelArtifact", "ModelHoldout", "ModelProfile", "Deployment",
                   "ModelEvent")


def test_the_read_side_asks_the_registry_not_its_tables() -> None:
    """What serves and when it changed is the registry's to say (one query, not two)."""
    wrong = [f"{module} takes {name} from feedback.tables"
             for module, path in MODULES.items() if _under(module, "dashboards", "ui", "api")
             for target, names in _imports(path) if target == "feedback.tables"
             for name in names if name in REGISTRY_TABLES]
    assert wrong == []


def test_the_rules_see_every_package() -> None:
    """A rule over an empty set of modules would pass for nothing."""
    for package in PACKAGES:
        assert any(_under(m, package) for m in MODULES), package
    assert len(MODULES) > 80
