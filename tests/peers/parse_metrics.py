#!/usr/bin/env python3
"""Parses Prometheus text exposition from stdin with the reference parser
(PyPI prometheus-client) and prints one JSON object: {"name{labels}": value}.
Exits non-zero if the text does not parse."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    samples = {}
    for family in text_string_to_metric_families(sys.stdin.read()):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    json.dump(samples, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
