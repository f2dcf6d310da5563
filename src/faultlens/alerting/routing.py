"""The alert routing file: receivers, routes (matchers -> owner, runbook, receivers, grouping), `for` and thresholds."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
)

from faultlens import config_files
from faultlens.alert_model import Receiver, ReceiverType, Route
from faultlens.alerting.matchers import LABEL_NAME, Matcher, matcher_from_dict, matches_all, parse_matcher
from faultlens.errors import AlertRoutingError, InvalidRequest

FORMAT_VERSION = 1
DEFAULT_OWNER = "unassigned"
DEFAULT_GROUP_BY = ("alertname", "source")
DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0
DEFAULT_FOR_S: dict[str, float] = {"P0": 0.0, "P1": 60.0, "P2": 300.0}
DEFAULT_RECEIVER = "default"
MAX_RECEIVER_TIMEOUT_S = 120.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110)
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_duration(value: Any) -> float:
    """Seconds from "30s", "5m", "4h", "1d", "1h30m", "250ms" or a number of seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like 30s, 5m, 4h, 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value.strip()):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(value.strip()))
    elif isinstance(value, str) and re.fullmatch(r"\d+(?:\.\d+)?", value.strip()):
        seconds = float(value.strip())
    else:
        raise ValueError(f"{str(value)[:40]!r} is not a duration; use a number of seconds or e.g. 30s, 5m, 4h, 1d")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be zero or more seconds")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _to_matcher(value: Any) -> Matcher:
    try:
        return parse_matcher(value) if isinstance(value, str) else matcher_from_dict(value)
    except InvalidRequest as exc:
        raise ValueError(exc.message) from None


MatcherItem = Annotated[Matcher, PlainValidator(_to_matcher)]


def _label_names(values: Sequence[str]) -> Sequence[str]:
    bad = [v for v in values if not LABEL_NAME.fullmatch(v)]
    if bad:
        raise ValueError(f"invalid label name(s) {bad[:5]}: use letters, digits and _")
    if len(set(values)) != len(values):
        raise ValueError("a label is listed twice")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ConditionSettings(_Strict):
    """Thresholds of the alert conditions (alerting/conditions.py); the routing file's `conditions` overrides them."""

    recurring_min_failures: int = Field(default=20, ge=1)  # one error kind / fingerprint in the window
    recurring_window_s: Duration = Field(
        default=900.0, gt=0, validation_alias=AliasChoices("recurring_window", "recurring_window_s")
    )
    dead_letter_surge_min: int = Field(default=10, ge=1)
    dead_letter_surge_factor: float = Field(default=3.0, gt=1.0)  # times the usual rate
    retry_loop_min_attempts: int = Field(default=5, ge=2)
    security_min_events: int = Field(default=10, ge=1)
    security_factor: float = Field(default=5.0, gt=1.0)
    volume_spike_factor: float = Field(default=5.0, gt=1.0)
    volume_min_events: int = Field(default=1000, ge=1)


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV.fullmatch(value):
        raise ValueError("not an environment variable name: use letters, digits and _ (not starting with a digit)")
    return value


def _receiver_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("use 1 to 64 letters, digits, _ . or - (starting with a letter or digit)")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


class _EnvRef(_Strict):
    env: EnvName


def _header_value(value: Any) -> str | _EnvRef:
    if isinstance(value, str):
        if "\r" in value or "\n" in value:
            raise ValueError("the value holds a line break")  # never the value: it may be a secret
        return value
    if isinstance(value, Mapping) and set(value) == {"env"} and isinstance(value["env"], str):
        _env_name(value["env"])
        return _EnvRef(env=value["env"])
    raise ValueError("a header value is a string or {env: NAME} (an environment variable)")


HeaderValue = Annotated[str | _EnvRef, PlainValidator(_header_value)]


class _ReceiverSpec(_Strict):
    name: Annotated[str, AfterValidator(_receiver_name)]
    type: ReceiverType
    url: str | None = None
    url_env: EnvName | None = None
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    tenants: tuple[str, ...] | None = Field(default=None, min_length=1)
    timeout: Duration = Field(default=10.0, gt=0, le=MAX_RECEIVER_TIMEOUT_S)
    max_attempts: int | None = Field(default=None, ge=1, le=100)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str | _EnvRef]) -> dict[str, str | _EnvRef]:
        for name in value:
            if not _HEADER.fullmatch(name):
                raise ValueError(f"{name[:60]!r} is not a valid header name")
        return value


class _RouteSpec(_Strict):
    matchers: tuple[MatcherItem, ...] = ()
    owner: str | None = Field(default=None, min_length=1)
    runbook_url: str | None = Field(default=None, min_length=1)
    receivers: tuple[str, ...] | None = None  # None: the defaults' receivers; []: notify nobody
    group_by: tuple[str, ...] | None = None
    group_wait: Duration | None = None
    repeat_interval: Duration | None = Field(default=None, gt=0)
    continue_: bool = Field(default=False, alias="continue")

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return value if value is None else tuple(_label_names(value))


class _Defaults(_Strict):
    owner: str = Field(default=DEFAULT_OWNER, min_length=1)
    runbook_url: str | None = Field(default=None, min_length=1)  # None: <runbook_base>#<alertname>
    receivers: tuple[str, ...] | None = None  # None: every receiver of the file
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    group_wait: Duration = DEFAULT_GROUP_WAIT_S
    repeat_interval: Duration = Field(default=DEFAULT_REPEAT_INTERVAL_S, gt=0)

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_label_names(value))


class _ForSpec(_Strict):
    P0: Duration = DEFAULT_FOR_S["P0"]
    P1: Duration = DEFAULT_FOR_S["P1"]
    P2: Duration = DEFAULT_FOR_S["P2"]


class _RoutingFile(_Strict):
    version: int
    defaults: _Defaults = _Defaults()
    for_: _ForSpec = Field(default=_ForSpec(), alias="for")
    main_path_sources: tuple[str, ...] = ()
    receivers: tuple[_ReceiverSpec, ...] = ()
    routes: tuple[_RouteSpec, ...] = ()
    conditions: ConditionSettings = ConditionSettings()

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if value != FORMAT_VERSION or isinstance(value, bool):
            raise ValueError(f"{str(value)[:20]!r} is not a known version; this format is version {FORMAT_VERSION}")
        return value


@dataclass(frozen=True)
class _CompiledRoute:
    matchers: tuple[Matcher, ...]
    spec: _RouteSpec


@dataclass(frozen=True)
class Routing:
    """Where each alert goes and who owns it. Built by load_routing; routes are tried in file order."""

    version: int
    receivers: dict[str, Receiver] = field(repr=False)  # URLs and headers may hold secrets
    main_path_sources: frozenset[str]
    for_s: dict[str, float]
    conditions: ConditionSettings
    # What an operator should know though nothing is invalid (no receiver at all, an unused receiver ...).
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None
    runbook_base: str = "docs/runbook.md"
    defaults: _Defaults = field(default_factory=_Defaults)
    routes: tuple[_CompiledRoute, ...] = ()

    def route(self, labels: Mapping[str, str]) -> Route:
        """The first route whose matchers all hold decides; with `continue: true` later matching routes add their
        receivers. Nothing matching: the defaults."""
        first: _RouteSpec | None = None
        receivers: list[str] = []
        for candidate in self.routes:
            if not matches_all(candidate.matchers, labels):
                continue
            first = first or candidate.spec
            names = candidate.spec.receivers if candidate.spec.receivers is not None else self._default_receivers()
            receivers.extend(n for n in names if n not in receivers)
            if not candidate.spec.continue_:
                break
        if first is None:
            receivers = list(self._default_receivers())
        spec = first or _RouteSpec()
        d = self.defaults
        alertname = labels.get("alertname", "")
        runbook = spec.runbook_url or d.runbook_url or f"{self.runbook_base}#{{alertname}}"
        return Route(
            owner=spec.owner or d.owner,
            runbook_url=runbook.replace("{alertname}", alertname),
            receivers=tuple(receivers),
            group_by=spec.group_by if spec.group_by is not None else d.group_by,
            group_wait_s=spec.group_wait if spec.group_wait is not None else d.group_wait,
            repeat_interval_s=spec.repeat_interval if spec.repeat_interval is not None else d.repeat_interval,
        )

    def receivers_for(self, tenant: str, route: Route) -> list[Receiver]:
        """The route's receivers that serve this tenant (a receiver removed from the file is skipped)."""
        found = (self.receivers.get(name) for name in route.receivers)
        return [r for r in found if r is not None and r.serves(tenant)]

    def for_level(self, level: str) -> float:
        """Seconds a condition of this level stays pending before it fires."""
        return self.for_s.get(level, DEFAULT_FOR_S["P2"])

    def _default_receivers(self) -> tuple[str, ...]:
        return self.defaults.receivers if self.defaults.receivers is not None else tuple(self.receivers)


# --- loading ------------------------------------------------------------------------------------


def _where(loc: Sequence[int | str]) -> str:
    """routes.2.matchers.0 -> routes[2].matchers[0]."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors():
        # Only pydantic's message, never err["input"]: the input may be a URL with a token in it.
        loc = [p for p in err["loc"] if not str(p).startswith("function-plain[")]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (see docs/alerting.md, Routing file)"
        elif err["type"] == "missing" and loc == ["version"]:
            message = f"missing; a routing file starts with `version: {FORMAT_VERSION}`"
        problems.append(f"{_where(loc)}: {message}")
    return problems


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_file(doc: _RoutingFile) -> list[str]:
    """Problems pydantic cannot see: duplicate and unknown receiver names, literal URLs."""
    problems: list[str] = []
    names: set[str] = set()
    for i, spec in enumerate(doc.receivers):
        where = f"receivers[{i}] ({spec.name})"
        if spec.name in names:
            problems.append(f"{where}: a receiver named {spec.name} is defined twice")
        names.add(spec.name)
        if (spec.url is None) == (spec.url_env is None):
            problems.append(f"{where}: give either url or url_env (the name of an environment variable)")
        elif spec.url is not None and not _http_url(spec.url):
            problems.append(f"{where}.url: must be an http:// or https:// URL")  # never the URL: it may hold a token
    known = names

    def unknown(where: str, refs: Sequence[str] | None) -> None:
        for j, ref in enumerate(refs or ()):
            if ref not in known:
                shown = ", ".join(sorted(known)) or "none are defined"
                problems.append(f"{where}.receivers[{j}]: unknown receiver {ref!r} (receivers: {shown})")

    unknown("defaults", doc.defaults.receivers)
    for i, route in enumerate(doc.routes):
        unknown(f"routes[{i}]", route.receivers)
    return problems


def _parse(document: Any, origin: str) -> _RoutingFile:
    if not isinstance(document, dict):
        _fail(origin, [f"(file): must be a mapping that starts with `version: {FORMAT_VERSION}`"])
    try:
        doc = _RoutingFile.model_validate(document)
    except ValidationError as exc:
        _fail(origin, _pydantic_problems(exc))
    problems = _check_file(doc)
    if problems:
        _fail(origin, problems)
    return doc


def _fail(origin: str, problems: list[str]) -> Any:
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise AlertRoutingError(
        f"alert routing file {origin} is invalid: {problems[0]}{more}",
        details={"path": origin, "problems": problems},
    )


_ROUTING_FILE = config_files.FileKind("alert routing file", AlertRoutingError, _parse)


def _resolve(spec: _ReceiverSpec, i: int, env: Mapping[str, str], *, require_env: bool) -> tuple[Receiver, list[str]]:
    """The receiver with its URL and headers read from the environment where the file names a variable."""
    where = f"receivers[{i}] ({spec.name})"
    problems: list[str] = []
    url = spec.url or ""
    if spec.url_env is not None:
        url = env.get(spec.url_env, "").strip()
        if not url:
            if require_env:
                problems.append(f"{where}.url_env: environment variable {spec.url_env} is not set or empty")
        elif not _http_url(url):
            problems.append(f"{where}.url_env: {spec.url_env} must hold an http:// or https:// URL")
    headers: dict[str, str] = {}
    for name, given in spec.headers.items():
        if isinstance(given, str):
            headers[name] = given
            continue
        value = env.get(given.env, "")
        if not value and require_env:
            problems.append(f"{where}.headers.{name}: environment variable {given.env} is not set or empty")
        elif "\r" in value or "\n" in value:
            problems.append(f"{where}.headers.{name}: environment variable {given.env} holds a line break")
        headers[name] = value
    receiver = Receiver(
        name=spec.name,
        type=spec.type,
        url=url,
        tenants=frozenset(spec.tenants) if spec.tenants is not None else None,
        headers=headers,
        timeout_s=spec.timeout,
        max_attempts=spec.max_attempts,
    )
    return receiver, problems


def _build(
    doc: _RoutingFile, path: Path, *, runbook_base: str, env: Mapping[str, str], require_env: bool
) -> tuple[Routing, list[str]]:
    problems: list[str] = []
    receivers: dict[str, Receiver] = {}
    for i, spec in enumerate(doc.receivers):
        receiver, found = _resolve(spec, i, env, require_env=require_env)
        receivers[spec.name] = receiver
        problems.extend(found)
    used = set(doc.defaults.receivers if doc.defaults.receivers is not None else receivers)
    for route in doc.routes:
        used.update(route.receivers if route.receivers is not None else ())
    warnings = [f"receiver {name} is used by no route nor the defaults" for name in receivers if name not in used]
    if not receivers:
        warnings.append("no receivers: alerts are stored and shown but not sent")
    routing = Routing(
        version=doc.version,
        receivers=receivers,
        main_path_sources=frozenset(doc.main_path_sources),
        for_s={"P0": doc.for_.P0, "P1": doc.for_.P1, "P2": doc.for_.P2},
        conditions=doc.conditions,
        warnings=warnings,
        path=path,
        runbook_base=runbook_base,
        defaults=doc.defaults,
        routes=tuple(_CompiledRoute(tuple(r.matchers), r) for r in doc.routes),
    )
    return routing, problems


def load_routing(path: Path | None, *, webhook_url: str, runbook_base: str = "docs/runbook.md") -> Routing:
    """The routing of `path` (YAML or JSON), or without a file one webhook receiver "default" at `webhook_url`.

    Without a file and without a webhook URL there is no receiver: alerts are stored and shown, not sent
    (Routing.warnings says so). AlertRoutingError lists every problem in details["problems"].
    """
    if path is None:
        return _without_file(webhook_url, runbook_base)
    path = Path(path)
    doc = config_files.load(path, _ROUTING_FILE)
    routing, problems = _build(doc, path, runbook_base=runbook_base, env=os.environ, require_env=True)
    if problems:
        _fail(str(path), problems)
    return routing


def _without_file(webhook_url: str, runbook_base: str) -> Routing:
    url = webhook_url.strip()
    receivers: dict[str, Receiver] = {}
    warnings: list[str] = []
    if url:
        if not _http_url(url):
            raise AlertRoutingError(
                "OBS_ALERT_WEBHOOK (FAULTLENS_ALERT_WEBHOOK) must be an http:// or https:// URL",
                details={"problems": ["OBS_ALERT_WEBHOOK: must be an http:// or https:// URL"]},
            )
        receivers[DEFAULT_RECEIVER] = Receiver(name=DEFAULT_RECEIVER, type="webhook", url=url)
    else:
        warnings.append(
            "no receivers: alerts are stored and shown but not sent "
            "(set OBS_ALERT_WEBHOOK or FAULTLENS_ALERT_ROUTING_FILE)"
        )
    return Routing(
        version=FORMAT_VERSION,
        receivers=receivers,
        main_path_sources=frozenset(),
        for_s=dict(DEFAULT_FOR_S),
        conditions=ConditionSettings(),
        warnings=warnings,
        runbook_base=runbook_base,
    )


def check_routing(path: Path, *, require_env: bool = True) -> list[str]:
    """Every problem of the routing file at `path`, [] when it loads. `require_env=False` accepts environment
    variables that are not set here (checking a file for another machine)."""
    try:
        doc = config_files.load(Path(path), _ROUTING_FILE)
    except AlertRoutingError as exc:
        return list(exc.details.get("problems") or [exc.message])
    _, problems = _build(doc, Path(path), runbook_base="", env=os.environ, require_env=require_env)
    return problems
