"""Moved to :mod:`contact_spark.config.capacity` (config is pure data, below every feature).

Kept only for ``contact_spark/realtime/capacity.py``, which imports ``CapacityRule`` from
here and is being changed by another branch; delete this module once it imports
``contact_spark.config.capacity``.
"""

from contact_spark.config.capacity import CapacityRule

__all__ = ["CapacityRule"]
