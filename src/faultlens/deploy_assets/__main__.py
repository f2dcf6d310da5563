"""`python -m faultlens.deploy_assets [--out deploy] [--namespace faultlens] [--check]`: regenerate deploy/."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from faultlens import metric_dictionary
from faultlens.deploy_assets import dashboard, rules, scrape

HEADER = "# Generated from src/faultlens/metric_dictionary.yaml by `make deploy-assets`; do not edit by hand.\n"
RULES = "prometheus/rules"
RULE_FILES = {"recording": f"{RULES}/faultlens-recording.yml", "alerts": f"{RULES}/faultlens-alerts.yml"}


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as literal blocks, the way people write rule files."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def _yaml(data: object) -> str:
    return HEADER + yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def generate(namespace: str = "faultlens") -> dict[str, str]:
    """Relative path under deploy/ -> file text."""
    dictionary = metric_dictionary.load()
    files = {
        "grafana/faultlens.json": json.dumps(dashboard.build(dictionary, namespace), indent=2, sort_keys=True) + "\n",
        "prometheus/prometheus.yml": _yaml(scrape.config()),
        RULE_FILES["recording"]: _yaml({"groups": rules.recording_groups(dictionary, namespace)}),
        RULE_FILES["alerts"]: _yaml({"groups": rules.alert_groups(dictionary, namespace)}),
    }
    tested = [f"../rules/{Path(p).name}" for p in RULE_FILES.values()]
    for alert in rules.alerts(dictionary, namespace):
        files[f"prometheus/tests/{alert.name}.test.yml"] = _yaml(rules.unit_test(alert, tested))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faultlens.deploy_assets", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("deploy"))
    parser.add_argument("--namespace", default="faultlens", help="the metric namespace (OBS_METRICS_NAMESPACE)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from a fresh generation")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in generate(args.namespace).items():
        path = args.out / rel
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        print(f"stale under {args.out}: {', '.join(stale)} (run `make deploy-assets`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
