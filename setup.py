"""contact_spark: whom to contact, about which campaign, through which channel, every month."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# Ranges here, exact pins in requirements/constraints.txt (what CI and `make` install).
INSTALL_REQUIRES = [
    "pyspark>=4.0.1,<=4.2.0",  # delta-spark 4.4 supports Spark up to 4.2.0
    "delta-spark>=4.0.0,<4.5",
    "deltalake>=1.2,<2",
    "pandas>=2.2,<3",  # PySpark up to 4.2 does not support pandas 3
    "pyarrow>=15",
    "numpy>=1.26,<3",
    "scipy>=1.11",
    "numba>=0.60",
    "pydantic>=2.12,<3",  # Field(exclude_if=...): empty offer attributes keep a config's fingerprint
    "PyYAML>=6",
    "sqlglot>=30.31,<31",  # parses eligibility predicates at config load (no Spark): config/predicates.py
    "phonenumbers>=8.13",
    "email-validator>=2.1,<3",
    "disposable-email-domains>=0.0.100",
    "plotly>=5.20",
]

# httpx2: the HTTP client of FastAPI's TestClient (tests/realtime).
TEST_REQUIRES = ["pytest>=8", "chispa>=0.10", "hypothesis>=6.100", "ruff>=0.5", "httpx2>=2.16", "mypy>=1.10"]

# The real-time check's HTTP endpoint (jobs/realtime.py serve, docs/realtime.md).
SERVE_REQUIRES = ["fastapi>=0.115", "uvicorn>=0.30"]

setup(
    name="contact_spark",
    version="0.1.0",
    description="Optimal multi-channel contact planning on Spark with certified duality gap",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["contact_spark", "contact_spark.*"]),
    package_data={"contact_spark": ["config/*.yaml"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "serve": SERVE_REQUIRES},
)
