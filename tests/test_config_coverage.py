"""docs/config_coverage.md stays the inventory of every option: each option of the config
models is named there, and each test it cites exists (pure: no Spark)."""

from __future__ import annotations

import ast
import re
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from contact_spark.config.imports import ImportMapping
from contact_spark.config.models import AppConfig
from contact_spark.config.policy import RULE_TYPES, Scope

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "config_coverage.md"


def option_names(model: type[BaseModel]) -> Iterator[str]:
    """The name of every field of ``model`` and of the models it holds, recursively."""
    for name, field in model.model_fields.items():
        yield name
        for nested in _models(field.annotation):
            if nested is not Scope:
                yield from option_names(nested)


def _models(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from _models(argument)


def test_every_option_of_the_config_models_is_in_the_inventory() -> None:
    """An option added to a model without a line in docs/config_coverage.md fails here:
    say which test runs it (or why it is an annotation)."""
    quoted = " ".join(re.findall(r"`([^`]+)`", DOC.read_text(encoding="utf-8")))
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", quoted))
    names = set(option_names(AppConfig)) | set(option_names(ImportMapping))
    for rule in RULE_TYPES.values():
        names |= set(option_names(rule))
    names |= set(RULE_TYPES)
    assert sorted(names - words) == []


def test_every_test_the_inventory_cites_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(cited) > 80
    assert "`::" not in text, "cite a test with its file: `tests/x.py::test_name`"
    missing = []
    for path, name in sorted(set(cited)):
        source = ROOT / path
        defined = (
            {
                n.name
                for n in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
                if isinstance(n, ast.FunctionDef)
            }
            if source.is_file()
            else set()
        )
        if name not in defined:
            missing.append(f"{path}::{name}")
    assert missing == []
