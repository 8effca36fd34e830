"""Outgoing: every message mailproc sends, rendered from templates (`render`), delivered from the
outbox exactly once (`delivery`), by SMTP (`smtp`) or into a folder."""
