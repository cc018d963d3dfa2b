"""What moto's server cannot create or read back, and the narrowest exclusion used for each.

Every entry names the resource (by Terraform type and, where it matters, attribute), the exact error
seen, whose gap it is, and the override applied to the scratch copy of the stack (never to the
synthesized output). The list is as short as moto allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Gap:
    resource_type: str
    error: str
    owner: str  # "moto" or "ours"
    exclusion: str
    attributes: dict[str, Any] | None = None
    """Attribute values set in an override for every resource of the type (None: skip the resource)."""


EXCLUSIONS: tuple[Gap, ...] = ()


def apply_exclusions(stack_dir: Path) -> None:
    """Write the exclusions for the resources this stack has into ``moto_gaps_override.tf.json``."""
    synthesized = json.loads((stack_dir / "cdk.tf.json").read_text())
    resources: dict[str, dict[str, Any]] = {}
    for gap in EXCLUSIONS:
        for name in synthesized.get("resource", {}).get(gap.resource_type, {}):
            resources.setdefault(gap.resource_type, {})[name] = dict(gap.attributes or {"count": 0})
    if resources:
        (stack_dir / "moto_gaps_override.tf.json").write_text(json.dumps({"resource": resources}, indent=2) + "\n")
