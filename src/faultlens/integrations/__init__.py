"""Integrations a host app installs to report its outcomes to faultlens (ASGI, Celery, RQ, logging).

They import nothing of the server: a host app needs only `faultlens[asgi]` (or `[celery]`, `[rq]`, `[logging]`).
"""
