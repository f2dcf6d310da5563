"""ASGI factory for process managers: `uvicorn --factory faultlens.api.asgi:app` reads FAULTLENS_* settings."""

from __future__ import annotations

from fastapi import FastAPI

from faultlens import process_tuning
from faultlens.api.app import create_app
from faultlens.services import build_services
from faultlens.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    built = create_app(build_services(settings))
    process_tuning.settle(settings)
    return built
