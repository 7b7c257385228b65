"""YAML's safe loader, refusing a mapping that gives the same key twice.

PyYAML's ``safe_load`` keeps the last of two equal keys without a word, so a rule with two
``max:`` lines silently loses one. Every configuration file is read through :func:`safe_load`
here instead: a duplicate is a YAML error naming the line of both occurrences and the key.
A key overridden through a merge (``<<: *defaults``) is not a duplicate: that is what a merge
is for.
"""

from __future__ import annotations

from typing import Any

import yaml

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
