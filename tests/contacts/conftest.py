"""Fixtures of the contacts tests.

The pandas UDF workers must run this interpreter (its phonenumbers and
email-validator), not the first ``python3`` on PATH; set before the session starts.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
