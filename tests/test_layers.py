"""The layer contract of the package, read from the source with ``ast`` (``make layers``).

Layers, lowest first; a module may import its own layer and the layers before it, never
one after it. Every ``import`` counts: at module level, inside a function, or under
``TYPE_CHECKING``. Known debts are listed in ``ALLOWED`` with the reason, so that the
check passes and the debt stays visible; an entry that no longer matches an import fails
the check too (the list only shrinks). The same imports form no cycle (``ALLOWED_CYCLES``
lists the known ones).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "contact_spark"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "errors"),
    ("io", "spark", "contract", "data"),
    ("contacts", "eligibility", "propensity"),
    ("policy",),
    ("solver",),
    ("capacity", "planning"),
    ("baseline", "validation", "explain"),
    # ``export`` hands a validated plan to execution systems: after validation, beside report;
    # ``scenarios`` compares two runs' plans with the report's page building blocks.
    ("report", "export", "scenarios"),
    # ``inputs`` reads the input tables with the contacts confirmed in real time.
    ("adaptive", "realtime", "inputs"),
    ("cli", "stages", "pipeline", "deploy", "stage_job", "__init__"),
)

# (importing module, imported module) → why it is allowed for now.
ALLOWED: dict[tuple[str, str], str] = {}
# Sorted module names of one cycle → why it is allowed for now.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}


def layer_of(module: str) -> int:
    """The layer of ``contact_spark.<top>...``, from its first component below the package."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """The ``contact_spark`` modules ``path`` imports anywhere (a ``from x import y`` names x)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "contact_spark":  # ``from contact_spark import config``: the sub-module
                found.update(f"contact_spark.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name == "contact_spark" or name.startswith("contact_spark.")}


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def violations() -> set[tuple[str, str]]:
    found = set()
    for name, path in modules().items():
        for imported in imports(path):
            if layer_of(imported) > layer_of(name):
                found.add((name, imported))
    return found


def test_no_module_imports_a_later_layer() -> None:
    found = violations()
    new = sorted(found - set(ALLOWED))
    assert not new, "imports of a later layer:\n" + "\n".join(
        f"  {a} -> {b} ({LAYERS[layer_of(a)][0]} layer imports {LAYERS[layer_of(b)][0]} layer)"
        for a, b in new
    )
    stale = sorted(set(ALLOWED) - found)
    assert not stale, f"allowed imports that no longer exist (remove them from ALLOWED): {stale}"


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (its own parent packages left out)."""
    known = modules()
    return {
        name: {
            target
            for target in imports(path)
            if target in known and target != name and not name.startswith(target + ".")
        }
        for name, path in known.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            connect(name)
    return found


def test_no_import_cycle() -> None:
    found = [c for c in cycles(import_graph()) if tuple(c) not in ALLOWED_CYCLES]
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in found
    )
    stale = set(ALLOWED_CYCLES) - {tuple(c) for c in cycles(import_graph())}
    assert not stale, f"allowed cycles that no longer exist (remove them from ALLOWED_CYCLES): {stale}"


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from contact_spark.pipeline import run_pipeline\n", encoding="utf-8")
    assert imports(source) == {"contact_spark.pipeline"}
    assert layer_of("contact_spark.pipeline") > layer_of("contact_spark.report.html")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# What the independent validator re-checks, so must not share code with: the solver and its
# policy compiler, the capacity prices and the plan stage, and the per-customer rule checker
# of the greedy baseline, contact_decisions and the real-time check (baseline.rules).
CHECKED_BY_THE_VALIDATOR = (
    "contact_spark.policy",
    "contact_spark.solver",
    "contact_spark.capacity",
    "contact_spark.planning",
    "contact_spark.baseline",
)


def test_the_validator_shares_no_code_with_what_it_checks() -> None:
    graph = import_graph()
    reached: set[str] = set()
    todo = [name for name in graph if name.startswith("contact_spark.validation")]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    shared = sorted(
        name
        for name in reached
        if any(name == p or name.startswith(p + ".") for p in CHECKED_BY_THE_VALIDATOR)
    )
    assert not shared, f"the validator imports, directly or not, code it checks: {shared}"


# The capacity periods' layout (config/periods.py) is shared by the engine, the baseline, the
# real-time check and the report; the validator reads the rule's keys and derives them again.
PERIOD_EXPANSION = {"periods", "period_labels", "capacity_periods", "period_spans", "covers"}


def period_expansion_used(path: Path) -> set[str]:
    """The names of the period expansion a module refers to (attribute, name or import)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = {ast.Attribute: "attr", ast.Name: "id", ast.alias: "name"}.get(type(node))
        if name is not None and getattr(node, name) in PERIOD_EXPANSION:
            found.add(getattr(node, name))
    return found


def test_the_validator_lays_out_capacity_periods_itself() -> None:
    used = {
        f"{name}: {sorted(found)}"
        for name, path in modules().items()
        if name.startswith("contact_spark.validation") and (found := period_expansion_used(path))
    }
    assert not used, f"the validator uses the config's period expansion: {sorted(used)}"
    # The check sees it where it is used: the greedy baseline cuts by the config's periods.
    assert "periods" in period_expansion_used(PACKAGE / "baseline" / "capacity.py")
