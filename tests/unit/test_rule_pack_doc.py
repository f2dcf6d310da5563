"""The worked example in docs/rule-packs.md is a valid pack whose examples pass, so the doc cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from faultlens.classify.engine import Classifier
from faultlens.classify.examples import test_pack
from faultlens.classify.lint import check_pack
from faultlens.classify.rules import default_pack, load_pack_data

DOC = Path(__file__).resolve().parents[2] / "docs" / "rule-packs.md"


def _example_pack() -> dict[str, object]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1
    data = yaml.safe_load(blocks[0])
    assert isinstance(data, dict)
    return data


def test_the_documented_pack_checks_and_its_examples_pass() -> None:
    pack = load_pack_data(_example_pack())
    assert pack.id == "payments@2026-12-06" and len(pack.rules) == 2
    errors = [p for p in check_pack(pack, base=[default_pack()]) if p.severity == "error"]
    assert errors == []
    assert test_pack(pack, base=[default_pack()]) == []


def test_the_documented_pack_decides_as_the_doc_says() -> None:
    classifier = Classifier([load_pack_data(_example_pack()), default_pack()])
    outage = classifier.classify(
        status="failure",
        http_status=502,
        error_code=None,
        error_message="card_network_unavailable: mastercard timeout",
        source="payments-proxy",
        operation=None,
    )
    assert (outage.failure_class.value, outage.is_actionable, outage.retryable) == ("service_failure", True, True)
    declined = classifier.classify(
        status="failure",
        http_status=402,
        error_code=None,
        error_message="card declined: insufficient funds",
        source="payments-proxy",
        operation=None,
    )
    assert (declined.failure_kind, declined.failure_class.value, declined.is_actionable) == (
        "card_declined",
        "client_failure",
        False,
    )
