"""faultlens: failure triage for requests, tasks and jobs."""

__version__ = "0.1.0"
