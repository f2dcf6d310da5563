"""The example runner: every example a pack documents, classified and compared with what it declares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faultlens.classify.engine import Classifier
from faultlens.classify.rules import RulePack
from faultlens.model import Category, Classification, FailureClass

__all__ = ["ExampleFailure", "test_pack"]


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """An example that did not classify the way its rule declares."""

    rule: str
    index: int
    example: dict[str, Any]
    expected: dict[str, Any]
    actual: Classification
    message: str


def test_pack(pack: RulePack, *, base: Sequence[RulePack] = ()) -> list[ExampleFailure]:
    """Every example of every rule, classified with `pack` layered on `base`, against its expectation."""
    clf = Classifier([pack, *base], cache_size=2)
    failures: list[ExampleFailure] = []
    for rule in pack.rules:
        for k, ex in enumerate(rule.examples):
            expected: dict[str, Any] = {
                "rule_name": rule.name,
                "rule_version": pack.id,
                "failure_kind": rule.failure_kind,
                "failure_class": rule.failure_class.value,
            }
            exp = ex.expect
            if exp is not None:
                if exp.rule is not None and exp.rule != rule.name:
                    # Pointing at another rule: its outputs are checked only where spelled out.
                    expected = {"rule_name": exp.rule}
                for name in ("failure_kind", "failure_class", "category", "is_actionable", "retryable"):
                    value = getattr(exp, name)
                    if value is not None:
                        expected[name] = value.value if isinstance(value, FailureClass | Category) else value
            event = ex.event()
            got = clf.classify(**event)
            actual = {
                "rule_name": got.rule_name,
                "rule_version": got.rule_version,
                "failure_kind": got.failure_kind,
                "failure_class": got.failure_class.value,
                "category": str(got.category),
                "is_actionable": got.is_actionable,
                "retryable": got.retryable,
            }
            wrong = {k2: (v, actual[k2]) for k2, v in expected.items() if actual[k2] != v}
            if wrong:
                detail = ", ".join(f"{k2}: expected {e!r}, got {a!r}" for k2, (e, a) in wrong.items())
                failures.append(
                    ExampleFailure(
                        rule=rule.name,
                        index=k,
                        example={k2: v for k2, v in event.items() if v is not None},
                        expected=expected,
                        actual=got,
                        message=f"rule {rule.name!r} example {k}: {detail}",
                    )
                )
    return failures


# Not a pytest test despite its name; test modules import it.
test_pack.__test__ = False  # type: ignore[attr-defined]
