"""Evidence (EvidenceStateMachine): one step of a preview or calibration on AWS."""

from typing import Any

STEPS = ("scan", "outcomes", "replay", "reduce")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise NotImplementedError
