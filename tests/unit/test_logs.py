"""faultlens.logs: the JSON and text lines, the context they carry, redaction, and the one root handler."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from faultlens import logs, request_context
from faultlens.classify.redact import redact


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("faultlens.test_logs")
    saved = (log.level, log.propagate, list(log.handlers))
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.setLevel(saved[0])
    log.propagate = saved[1]
    log.handlers[:] = saved[2]


def _emit(log: logging.Logger, handler: logging.Handler, *args: Any, **kwargs: Any) -> None:
    log.handlers[:] = [handler]
    log.info(*args, **kwargs)


def _json(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_the_keys_in_order_with_the_bound_context(logger: logging.Logger) -> None:
    out = io.StringIO()
    handler = logs.make_handler("auto", stream=out)  # not a terminal: JSON
    with request_context.scope(request_id="r-1", tenant_id="acme", correlation_id="c-9"):
        _emit(logger, handler, "ingested %d event(s)", 3, extra={"status": 200, "duration_ms": 1.5})
    _emit(logger, handler, "outside")
    first, second = _json(out)
    assert list(first) == [*logs.KEYS, "status", "duration_ms"]
    assert first["msg"] == "ingested 3 event(s)" and first["level"] == "INFO"
    assert first["logger"] == "faultlens.test_logs"
    assert (first["request_id"], first["tenant_id"], first["correlation_id"]) == ("r-1", "acme", "c-9")
    assert first["job_id"] is None and (first["status"], first["duration_ms"]) == (200, 1.5)
    assert first["ts"].endswith("Z") and len(first["ts"]) == len("2026-12-06T09:31:02.123Z")
    assert second["request_id"] is None and second["tenant_id"] is None  # the scope ended


def test_a_field_passed_in_extra_wins_over_the_context(logger: logging.Logger) -> None:
    out = io.StringIO()
    with request_context.scope(error_code="event_not_found"):
        _emit(logger, logs.make_handler("json", stream=out), "failed", extra={"error_code": "internal_error"})
    assert _json(out)[0]["error_code"] == "internal_error"


def test_the_context_is_read_on_the_thread_that_logged(logger: logging.Logger) -> None:
    out = io.StringIO()
    logger.handlers[:] = [logs.make_handler("json", stream=out)]

    def work() -> None:
        with request_context.scope(job_id="sync:rq"):
            logger.warning("read failed")

    with request_context.scope(job_id="job-main"):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        logger.info("main")
    assert [r["job_id"] for r in _json(out)] == ["sync:rq", "job-main"]


def test_an_exception_is_one_exc_text_with_its_secrets_masked(logger: logging.Logger) -> None:
    out = io.StringIO()
    handler = logs.make_handler("json", stream=out, redact=redact)
    logger.handlers[:] = [handler]
    try:
        raise RuntimeError("connect failed: password=hunter2secret")
    except RuntimeError:
        logger.exception("task sync round failed for token=ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    (line,) = _json(out)
    assert line["exc"].startswith("Traceback") and "RuntimeError: connect failed" in line["exc"]
    assert "hunter2secret" not in out.getvalue() and "ghp_abcdef" not in out.getvalue()
    assert "[REDACTED]" in line["exc"] and "[REDACTED]" in line["msg"]
    assert list(line)[: len(logs.KEYS)] == list(logs.KEYS) and list(line)[-1] == "exc"


def test_without_redaction_an_info_message_is_left_as_it_is(logger: logging.Logger) -> None:
    out = io.StringIO()
    _emit(logger, logs.make_handler("json", stream=out, redact=redact), "GET /x request_id=%s", "a" * 32)
    assert _json(out)[0]["msg"] == "GET /x request_id=" + "a" * 32


def test_text_on_a_terminal_or_when_asked(logger: logging.Logger) -> None:
    for stream, fmt in ((_Tty(), "auto"), (io.StringIO(), "text")):
        with request_context.scope(request_id="r-2", job_id=None):
            _emit(logger, logs.make_handler(fmt, stream=stream), "hello %s", "there")  # type: ignore[arg-type]
        line = stream.getvalue().rstrip("\n")
        assert line.endswith(" INFO faultlens.test_logs: hello there request_id=r-2"), line
        assert line[:24].endswith("Z") and line[10] == "T"
    tty = _Tty()
    _emit(logger, logs.make_handler("json", stream=tty), "forced")
    assert json.loads(tty.getvalue())["msg"] == "forced"


def test_setup_installs_one_root_handler_and_refuses_unknown_levels() -> None:
    root = logging.getLogger()
    own, uvicorn = logging.getLogger("faultlens"), logging.getLogger("uvicorn")
    saved = (root.level, list(root.handlers), own.level, own.propagate, uvicorn.level)
    try:
        first = logs.setup("info", "json", stream=io.StringIO())
        out = io.StringIO()
        second = logs.setup("WARNING", "json", stream=out)
        assert first not in root.handlers and root.handlers.count(second) == 1
        assert own.level == logging.WARNING and uvicorn.level == logging.WARNING
        logging.getLogger("faultlens.jobs").info("not at WARNING")
        logging.getLogger("faultlens.jobs").warning("job %s lost", "j-1")
        assert [r["msg"] for r in _json(out)] == ["job j-1 lost"]
        with pytest.raises(ValueError, match="not a log level"):
            logs.setup("LOUD")
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
        own.setLevel(saved[2])
        own.propagate = saved[3]
        uvicorn.setLevel(saved[4])
