"""Read YAML configuration into the typed models, with errors that name file and key."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contact_spark.config.models import AppConfig
from contact_spark.config.yaml_loader import read_yaml_mapping, safe_load
from contact_spark.errors import ConfigError

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

# The energy retailer of the design documents: package data, so an installed wheel (or one on
# ``--py-files``, read from inside the zip) has it too. ``load_config()`` without a path reads it.
DEFAULT_CONFIG: Traversable = resources.files("contact_spark.config") / "default.yaml"


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see contact_spark/config/default.yaml for the valid keys)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "finite_number":
        message = "must be a finite number: .nan and .inf are not allowed (leave an optional bound out for no limit)"
    loc = tuple(error["loc"])
    return f"{_dotted(loc)}: {message}" if loc else message


def _list_index(items: list[Any], part: str, dotted_key: str) -> int:
    """The element of a list an override names: its 0-based index, or the ``name`` of a mapping
    in it (``capacities.rules.call_centre.max``: the rule named call_centre)."""
    if part.isdigit():
        if int(part) < len(items):
            return int(part)
        raise ConfigError("--set", [f"{dotted_key}: the list has {len(items)} element(s), no index {part}"])
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if part in names:
        return names.index(part)
    known = ", ".join(str(n) for n in names if n is not None) or "none"
    raise ConfigError(
        "--set",
        [f"{dotted_key}: no element named '{part}' in the list (names: {known}); name one, or give its index"],
    )


def _apply_override(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``dotted_key`` in ``tree``: each part is a mapping key or, in a list, an element's
    index or name; a missing mapping key is created."""
    node: Any = tree
    parts = dotted_key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part, dotted_key)
            if last:
                node[index] = value
                return
            node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            node = node.setdefault(part, {})
        else:
            raise ConfigError("--set", [f"{dotted_key}: '{parts[depth - 1]}' is not a section"])


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` (value in YAML syntax) as given on a command line."""
    if "=" not in text:
        raise ConfigError("--set", [f"'{text}' must look like key.path=value"])
    key, raw = text.split("=", 1)
    try:
        return key.strip(), safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            "--set", [f"{key.strip()}: not a YAML value ({getattr(exc, 'problem', exc)})"]
        ) from None


def config_from_dict(
    data: Mapping[str, Any], source: str = "<dict>", overrides: Mapping[str, Any] | None = None
) -> AppConfig:
    """Validate a configuration tree (already parsed) into an :class:`AppConfig`."""
    tree: dict[str, Any] = copy.deepcopy(dict(data))  # overrides set nested keys: not the caller's
    for key, value in (overrides or {}).items():
        _apply_override(tree, key, value)
    try:
        return AppConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> AppConfig:
    """Load and validate a YAML config file (default: the packaged ``default.yaml``);
    ``overrides`` maps dotted keys to values."""
    file: Traversable = Path(path) if path is not None else DEFAULT_CONFIG
    data = read_yaml_mapping(file, "the top level must be a mapping of sections")
    return config_from_dict(data, source=str(file), overrides=overrides)
