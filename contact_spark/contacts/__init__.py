"""Contact cleaning, best-contact scoring, ownership of shared contacts, contactability.

Entry point: :func:`contact_spark.contacts.stage.run_contacts_stage`. The settings are
configuration: :mod:`contact_spark.config.contacts`.
"""
