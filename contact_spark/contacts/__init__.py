"""Contact cleaning, best-contact scoring, ownership of shared contacts, contactability.

Entry point: :func:`contact_spark.contacts.stage.run_contacts_stage`. This package
init stays empty of imports: the config models import ``contacts.settings``.
"""
