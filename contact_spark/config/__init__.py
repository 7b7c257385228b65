"""Typed configuration: models and the YAML loader."""

from contact_spark.config.loader import config_from_dict, load_config, parse_override
from contact_spark.config.models import AppConfig

__all__ = ["AppConfig", "config_from_dict", "load_config", "parse_override"]
