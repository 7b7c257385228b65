"""YAML's safe loader, refusing a mapping that gives the same key twice.

PyYAML's ``safe_load`` keeps the last of two equal keys without a word, so a rule with two
``max:`` lines silently loses one. Every configuration file is read through :func:`safe_load`
here instead: a duplicate is a YAML error naming the line of both occurrences and the key.
A key overridden through a merge (``<<: *defaults``) is not a duplicate: that is what a merge
is for.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from contact_spark.errors import ConfigError

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:  # pragma: no cover
        from importlib.abc import Traversable

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives the same key twice (a YAMLError with the line of the second one)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings refuse duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first_line
                except TypeError:  # an unhashable key: the base class says so
                    continue
                line = key_node.start_mark.line + 1
                if seen:
                    lines = (
                        f"line {line}" if first_line[key] == line else f"lines {first_line[key]} and {line}"
                    )
                    raise DuplicateKeyError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"key '{key}' is given twice ({lines}): keep one",
                        key_node.start_mark,
                    )
                first_line[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKeyError` for a key given twice."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no tags, nothing runs


def read_yaml_mapping(file: Path | Traversable, top_level: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file; a missing file, bad YAML, a duplicate key or
    another top level (``top_level`` says what it must be) is a :class:`ConfigError` naming
    the file and the line."""
    if not file.is_file():
        raise ConfigError(str(file), ["file not found"])
    try:
        data = safe_load(file.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise ConfigError(str(file), [f"line {exc.problem_mark.line + 1}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(file), [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(file), [top_level])
    return data
