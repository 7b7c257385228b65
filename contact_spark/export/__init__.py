"""The way out: a run's plan exported, month by month, as one list per channel for the
execution systems (e-mail platform, SMS gateway, call-centre dialler), with a manifest.

Consent is checked again against the current input tables at export time (``recheck``);
files are written to a temporary folder and swapped in whole (``files``); the export of a
run × month is replaced on rerun, files and ``export_rejected`` rows alike (``export``).
See docs/export.md.
"""
