"""Know your customers: propensity models learned from the contact history, and customer segments.

See docs/propensity.md. Settings live in :mod:`contact_spark.config.propensity`; the
stages (``segments``, ``propensity``) in :mod:`contact_spark.propensity.stage`.
"""
