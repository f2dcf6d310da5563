"""The alert routing file: what loads, what each route decides, every kind of bad file, environment variables."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from faultlens import config_files
from faultlens.alert_model import Receiver, Route
from faultlens.alerting.routing import ConditionSettings, check_routing, load_routing, parse_duration
from faultlens.errors import AlertRoutingError

EXAMPLE = Path(__file__).parents[2] / "examples" / "alert-routing.yaml"

GOOD = """
version: 1
defaults:
  owner: platform
  receivers: [chat]
  group_wait: 45s
for: {P0: 0, P1: 2m, P2: 1h}
main_path_sources: [checkout, payments]
receivers:
  - {name: chat, type: webhook, url: "https://chat.example/hook"}
  - name: pager
    type: alertmanager_webhook
    url_env: TEST_PAGER_URL
    headers: {Authorization: {env: TEST_PAGER_AUTH}, X-Team: core}
    timeout: 3s
    max_attempts: 4
    tenants: [acme]
  - {name: am, type: alertmanager_api, url: "http://am.example:9093/"}
routes:
  - matchers: ["level=P0"]
    owner: sre
    receivers: [pager]
    repeat_interval: 30m
    continue: true
  - matchers: ['source=~"checkout|payments"', {name: environment, value: test, isEqual: false}]
    owner: shop-team
    runbook_url: "https://wiki.example/shop#{alertname}"
    receivers: [am]
    group_by: [alertname, category]
  - matchers: ["environment=test"]
    receivers: []
conditions:
  recurring_min_failures: 50
  recurring_window: 30m
"""


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    config_files.clear_cache()
    yield
    config_files.clear_cache()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("TEST_PAGER_URL", "https://pager.example/v1/hook?token=s3cret")
    monkeypatch.setenv("TEST_PAGER_AUTH", "Bearer t0ken")
    return monkeypatch


def write(tmp_path: Path, text: str, name: str = "routing.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    found = check_routing(path)
    with pytest.raises(AlertRoutingError) as caught:
        load_routing(path, webhook_url="")
    assert caught.value.code == "alert_routing_invalid"
    assert caught.value.details["problems"] == found
    assert found[0] in caught.value.message and str(path) in caught.value.message
    return found


def test_a_good_file_loads(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    routing = load_routing(write(tmp_path, GOOD), webhook_url="https://ignored.example/")
    assert routing.version == 1
    assert routing.warnings == []
    assert routing.main_path_sources == frozenset({"checkout", "payments"})
    assert routing.for_s == {"P0": 0.0, "P1": 120.0, "P2": 3600.0}
    assert routing.for_level("P1") == 120.0
    assert routing.conditions == ConditionSettings(recurring_min_failures=50, recurring_window_s=1800)
    assert routing.conditions.dead_letter_surge_factor == 3.0
    assert list(routing.receivers) == ["chat", "pager", "am"]
    assert routing.receivers["pager"] == Receiver(
        name="pager",
        type="alertmanager_webhook",
        url="https://pager.example/v1/hook?token=s3cret",
        tenants=frozenset({"acme"}),
        headers={"Authorization": "Bearer t0ken", "X-Team": "core"},
        timeout_s=3.0,
        max_attempts=4,
    )
    assert routing.receivers["chat"] == Receiver(name="chat", type="webhook", url="https://chat.example/hook")
    assert check_routing(tmp_path / "routing.yaml") == []


def test_routes_decide_in_file_order(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    routing = load_routing(write(tmp_path, GOOD), webhook_url="")
    # Nothing matches: the defaults.
    assert routing.route({"alertname": "SloBurn", "level": "P2", "source": "search"}) == Route(
        owner="platform",
        runbook_url="docs/runbook.md#SloBurn",
        receivers=("chat",),
        group_by=("alertname", "source"),
        group_wait_s=45.0,
        repeat_interval_s=4 * 3600.0,
    )
    # The shop route: its own owner, runbook (with the alert's name), receiver and grouping.
    assert routing.route({"alertname": "Spike", "level": "P1", "source": "checkout"}) == Route(
        owner="shop-team",
        runbook_url="https://wiki.example/shop#Spike",
        receivers=("am",),
        group_by=("alertname", "category"),
        group_wait_s=45.0,
        repeat_interval_s=4 * 3600.0,
    )
    # P0 with `continue`: the first route sets owner and timing, the next matching one adds its receivers.
    p0 = routing.route({"alertname": "MainPathDown", "level": "P0", "source": "payments"})
    assert (p0.owner, p0.receivers, p0.repeat_interval_s, p0.group_by) == (
        "sre",
        ("pager", "am"),
        1800.0,
        ("alertname", "source"),
    )
    # The matcher on environment (isEqual false) keeps test checkouts off the shop route; `receivers: []` mutes.
    muted = routing.route({"alertname": "Spike", "level": "P1", "source": "checkout", "environment": "test"})
    assert (muted.owner, muted.receivers) == ("platform", ())
    assert routing.route({"alertname": "X", "level": "P0", "environment": "test"}).receivers == ("pager",)


def test_receivers_for_a_tenant(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    routing = load_routing(write(tmp_path, GOOD), webhook_url="")
    route = routing.route({"alertname": "A", "level": "P0", "source": "payments"})
    assert [r.name for r in routing.receivers_for("acme", route)] == ["pager", "am"]
    assert [r.name for r in routing.receivers_for("other", route)] == ["am"]  # pager serves acme only
    gone = Route("x", "", ("removed", "chat"), (), 0, 1)
    assert [r.name for r in routing.receivers_for("acme", gone)] == ["chat"]


def test_without_a_file_one_webhook_receiver() -> None:
    routing = load_routing(None, webhook_url=" https://hooks.example/faultlens ", runbook_base="https://x/runbook")
    assert routing.receivers == {
        "default": Receiver(name="default", type="webhook", url="https://hooks.example/faultlens")
    }
    assert routing.warnings == []
    assert routing.for_s == {"P0": 0.0, "P1": 60.0, "P2": 300.0}
    assert routing.conditions == ConditionSettings()
    route = routing.route({"alertname": "DeadLetterSurge", "level": "P1"})
    assert route == Route(
        owner="unassigned",
        runbook_url="https://x/runbook#DeadLetterSurge",
        receivers=("default",),
        group_by=("alertname", "source"),
        group_wait_s=30.0,
        repeat_interval_s=14400.0,
    )
    assert routing.receivers_for("any-tenant", route)[0].name == "default"


def test_without_a_file_or_webhook_nothing_is_sent_and_it_says_so() -> None:
    routing = load_routing(None, webhook_url="")
    assert routing.receivers == {}
    assert routing.warnings == [
        "no receivers: alerts are stored and shown but not sent (set OBS_ALERT_WEBHOOK or FAULTLENS_ALERT_ROUTING_FILE)"
    ]
    route = routing.route({"alertname": "A", "level": "P0"})
    assert route.receivers == ()
    assert routing.receivers_for("t", route) == []


def test_a_bad_webhook_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(AlertRoutingError) as caught:
        load_routing(None, webhook_url="ftp://user:pw@host/x?token=abc")
    assert "OBS_ALERT_WEBHOOK" in caught.value.message
    assert "pw" not in str(caught.value.message) + str(caught.value.details)
    assert "abc" not in str(caught.value.message) + str(caught.value.details)


def test_warnings_for_unused_receivers_and_none_at_all(tmp_path: Path) -> None:
    routing = load_routing(
        write(
            tmp_path,
            """
            version: 1
            defaults: {receivers: [a]}
            receivers:
              - {name: a, type: webhook, url: "http://a.example/"}
              - {name: b, type: webhook, url: "http://b.example/"}
            """,
        ),
        webhook_url="",
    )
    assert routing.warnings == ["receiver b is used by no route nor the defaults"]
    empty = load_routing(write(tmp_path, "version: 1\n", "empty.yaml"), webhook_url="https://not-used.example/")
    assert empty.receivers == {}
    assert empty.warnings == ["no receivers: alerts are stored and shown but not sent"]
    assert empty.route({"alertname": "A"}).receivers == ()


def test_defaults_without_receivers_send_to_every_receiver(tmp_path: Path) -> None:
    routing = load_routing(
        write(
            tmp_path,
            """
            version: 1
            receivers:
              - {name: a, type: webhook, url: "http://a.example/"}
              - {name: b, type: alertmanager_webhook, url: "http://b.example/"}
            routes:
              - {matchers: ["level=P0"], owner: x}
            """,
        ),
        webhook_url="",
    )
    assert routing.route({"alertname": "A", "level": "P2"}).receivers == ("a", "b")
    assert routing.route({"alertname": "A", "level": "P0"}).receivers == ("a", "b")  # no receivers: the defaults'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("defaults: {}\n", ["version: missing; a routing file starts with `version: 1`"]),
        ("version: 2\n", ["version: '2' is not a known version; this format is version 1"]),
        ("- a\n- b\n", ["(file): must be a mapping that starts with `version: 1`"]),
        ("version: 1\nroute: []\n", ["route: unknown field (see docs/alerting.md, Routing file)"]),
        (
            "version: 1\nroutes:\n  - {matchers: [level=P0]}\n  - {matchers: [level=P0]}\n"
            "  - matchers: [level=P1, 'source=~(a+)+']\n",
            [
                "routes[2].matchers[1]: invalid matcher 'source=~(a+)+': regex '(a+)+' can take exponential time on "
                "some inputs (a repeated group holds another unbounded repeat); rewrite it without nested "
                "quantifiers, or separate the repeated parts by a character they cannot match"
            ],
        ),
        (
            "version: 1\nroutes: [{matchers: [level]}]\n",
            [
                "routes[0].matchers[0]: invalid matcher 'level': expected name=value, name!=value, name=~regex "
                "or name!~regex"
            ],
        ),
        (
            "version: 1\nroutes: [{receivers: [ghost]}]\ndefaults: {receivers: [nobody]}\n",
            [
                "defaults.receivers[0]: unknown receiver 'nobody' (receivers: none are defined)",
                "routes[0].receivers[0]: unknown receiver 'ghost' (receivers: none are defined)",
            ],
        ),
        (
            "version: 1\ndefaults: {group_wait: soon, repeat_interval: 0}\nfor: {P1: -5}\n",
            [
                "defaults.group_wait: 'soon' is not a duration; use a number of seconds or e.g. 30s, 5m, 4h, 1d",
                "defaults.repeat_interval: Input should be greater than 0",
                "for.P1: a duration must be zero or more seconds",
            ],
        ),
        ("version: 1\nfor: {P3: 1m}\n", ["for.P3: unknown field (see docs/alerting.md, Routing file)"]),
        (
            "version: 1\ndefaults: {group_by: [alertname, 'bad-label']}\n",
            ["defaults.group_by: invalid label name(s) ['bad-label']: use letters, digits and _"],
        ),
        (
            "version: 1\nconditions: {recurring_min_failures: 0, retry_loop: 3}\n",
            [
                "conditions.recurring_min_failures: Input should be greater than or equal to 1",
                "conditions.retry_loop: unknown field (see docs/alerting.md, Routing file)",
            ],
        ),
        (
            "version: 1\nreceivers:\n  - {name: a, type: slack, url: 'http://x/'}\n"
            "  - {name: 'b c', type: webhook, url: 'http://x/', timeout: 10m}\n",
            [
                "receivers[0].type: Input should be 'webhook', 'alertmanager_webhook' or 'alertmanager_api'",
                "receivers[1].name: use 1 to 64 letters, digits, _ . or - (starting with a letter or digit)",
                "receivers[1].timeout: Input should be less than or equal to 120",
            ],
        ),
        (
            "version: 1\nreceivers:\n  - {name: a, type: webhook}\n"
            "  - {name: a, type: webhook, url: 'http://x/', url_env: X}\n"
            "  - {name: c, type: webhook, url: 'ftp://user:hunter2@x/?token=abc'}\n"
            "  - {name: d, type: webhook, url: 'https://'}\n",
            [
                "receivers[0] (a): give either url or url_env (the name of an environment variable)",
                "receivers[1] (a): a receiver named a is defined twice",
                "receivers[1] (a): give either url or url_env (the name of an environment variable)",
                "receivers[2] (c).url: must be an http:// or https:// URL",
                "receivers[3] (d).url: must be an http:// or https:// URL",
            ],
        ),
        (
            "version: 1\nreceivers:\n  - {name: a, type: webhook, url_env: 'my-url', headers: {A: {env: '1X'}}}\n",
            [
                "receivers[0].url_env: not an environment variable name: use letters, digits and _ (not starting "
                "with a digit)",
                "receivers[0].headers.A: not an environment variable name: use letters, digits and _ (not "
                "starting with a digit)",
            ],
        ),
        (
            "version: 1\nreceivers:\n  - {name: a, type: webhook, url: 'http://x/', tenants: []}\n",
            ["receivers[0].tenants: Tuple should have at least 1 item after validation, not 0"],
        ),
        (
            "version: 1\nreceivers:\n  - {name: a, type: webhook, url: 'http://x/', headers: {'Bad Name': v}}\n",
            ["receivers[0].headers: 'Bad Name' is not a valid header name"],
        ),
        (
            "version: 1\nreceivers:\n  - {name: a, type: webhook, url: 'http://x/',\n"
            '     headers: {A: [1], B: "x\\r\\nY: 1"}}\n',
            [
                "receivers[0].headers.A: a header value is a string or {env: NAME} (an environment variable)",
                "receivers[0].headers.B: the value holds a line break",
            ],
        ),
    ],
)
def test_bad_files_name_every_problem(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems_of(tmp_path, text) == expected


def test_problems_never_echo_a_url_or_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BAD_URL", "gopher://admin:hunter2@x/?token=abc")
    path = write(
        tmp_path,
        """
        version: 1
        receivers:
          - {name: a, type: webhook, url: "ftp://admin:hunter2@x/?token=abc"}
          - {name: b, type: webhook, url_env: TEST_BAD_URL}
          - {name: c, type: webhook, url: 42}
        """,
    )
    with pytest.raises(AlertRoutingError) as caught:
        load_routing(path, webhook_url="")
    shown = caught.value.message + repr(caught.value.details) + repr(check_routing(path))
    assert "hunter2" not in shown and "token" not in shown and "gopher" not in shown


def test_environment_variables_are_read_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.delenv("TEST_PAGER_URL", raising=False)
    monkeypatch.delenv("TEST_PAGER_AUTH", raising=False)
    expected = [
        "receivers[1] (pager).url_env: environment variable TEST_PAGER_URL is not set or empty",
        "receivers[1] (pager).headers.Authorization: environment variable TEST_PAGER_AUTH is not set or empty",
    ]
    assert check_routing(path) == expected
    assert check_routing(path, require_env=False) == []  # a file checked for another machine
    with pytest.raises(AlertRoutingError) as caught:
        load_routing(path, webhook_url="")
    assert caught.value.details["problems"] == expected

    monkeypatch.setenv("TEST_PAGER_URL", "mailto:oncall@example.com")
    monkeypatch.setenv("TEST_PAGER_AUTH", "Bearer a\r\nX-Evil: 1")
    assert check_routing(path) == [
        "receivers[1] (pager).url_env: TEST_PAGER_URL must hold an http:// or https:// URL",
        "receivers[1] (pager).headers.Authorization: environment variable TEST_PAGER_AUTH holds a line break",
    ]

    # The file is cached, the environment is not: a changed variable counts at the next load.
    monkeypatch.setenv("TEST_PAGER_URL", "https://pager-1.example/")
    monkeypatch.setenv("TEST_PAGER_AUTH", "Bearer one")
    assert load_routing(path, webhook_url="").receivers["pager"].url == "https://pager-1.example/"
    monkeypatch.setenv("TEST_PAGER_URL", "https://pager-2.example/")
    second = load_routing(path, webhook_url="").receivers["pager"]
    assert (second.url, second.headers["Authorization"]) == ("https://pager-2.example/", "Bearer one")


def test_the_routing_repr_holds_no_receiver_url(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    routing = load_routing(write(tmp_path, GOOD), webhook_url="")
    assert "s3cret" not in repr(routing) and "t0ken" not in repr(routing)


def test_unreadable_and_unparsable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert check_routing(missing) == [f"cannot read alert routing file {missing}: No such file or directory"]
    broken = write(tmp_path, "version: 1\nroutes: [\n", "broken.yaml")
    (problem,) = check_routing(broken)
    assert problem.startswith(f"alert routing file {broken} is not valid YAML:")
    json_file = write(tmp_path, '{"version": 1, "receivers": []}', "routing.json")
    assert check_routing(json_file) == []


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        *[(0, 0.0), (90, 90.0), (1.5, 1.5), ("30s", 30.0), ("5m", 300.0), ("4h", 14400.0), ("1d", 86400.0)],
        *[("1h30m", 5400.0), ("250ms", 0.25), ("2w", 1209600.0), ("45", 45.0), (" 10s ", 10.0), ("0.5m", 30.0)],
    ],
)
def test_durations(given: object, seconds: float) -> None:
    assert parse_duration(given) == seconds


@pytest.mark.parametrize("given", ["", "s", "5 m", "5x", "-1s", "1y", "m5", True, None, [1], float("inf"), -3])
def test_bad_durations(given: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(given)


def test_the_example_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGER_WEBHOOK_URL", "https://events.pager.example/integration/abc")
    monkeypatch.setenv("PAGER_AUTH_HEADER", "Token token=xyz")
    monkeypatch.setenv("OBS_ALERT_WEBHOOK", "https://chat.example/hooks/faultlens")
    assert check_routing(EXAMPLE) == []
    routing = load_routing(EXAMPLE, webhook_url="")
    assert routing.warnings == []
    assert set(routing.receivers) == {"pager", "team-webhook", "payments-alertmanager"}
    assert {r.type for r in routing.receivers.values()} == {"webhook", "alertmanager_webhook", "alertmanager_api"}
    assert routing.main_path_sources == frozenset({"checkout", "payments"})
    page = routing.route({"alertname": "MainPathDown", "level": "P0", "source": "payments"})
    assert page.owner == "sre-oncall"
    assert page.receivers == ("pager", "payments-alertmanager", "team-webhook")
    team = routing.route({"alertname": "ErrorSpike", "level": "P1", "source": "refunds"})
    assert (team.owner, team.receivers) == ("payments-team", ("payments-alertmanager", "team-webhook"))
    assert team.runbook_url == "https://wiki.example.com/payments/runbooks#ErrorSpike"
    other = routing.route({"alertname": "ErrorSpike", "level": "P2", "source": "search"})
    assert (other.owner, other.receivers) == ("platform-oncall", ("team-webhook",))
    assert routing.receivers_for("another-tenant", team) == [routing.receivers["team-webhook"]]


def test_the_documented_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "alerting.md").read_text()
    example = doc.split("## Routing file", 1)[1].split("### Example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    for name in ("PAGER_WEBHOOK_URL", "OBS_ALERT_WEBHOOK"):
        monkeypatch.setenv(name, "https://hooks.example/x")
    monkeypatch.setenv("PAGER_AUTH_HEADER", "Token t")
    path = write(tmp_path, example)
    assert check_routing(path) == []
    routing = load_routing(path, webhook_url="")
    # What the text under the example says.
    p0 = routing.route({"alertname": "A", "level": "P0", "source": "payments"})
    assert (p0.owner, p0.receivers) == ("sre-oncall", ("pager", "payments-alertmanager", "team-webhook"))
    p1 = routing.route({"alertname": "A", "level": "P1", "source": "refunds"})
    assert (p1.owner, p1.receivers) == ("payments-team", ("payments-alertmanager", "team-webhook"))
    other = routing.route({"alertname": "A", "level": "P2", "source": "search"})
    assert (other.owner, other.receivers) == ("platform-oncall", ("team-webhook",))
