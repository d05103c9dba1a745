"""Evidence (EvidenceStateMachine): one step of a preview or calibration on AWS, over the
table's Scan segments and shards of its partitions (leadscore.adapters.shards), the partial
results in the evidence bucket.

Event: `{"step": "scan" | "outcomes" | "merge" | "replay" | "reduce", "job": <the job, or
the key of its JSON in the bucket>, "segment": n (scan) | "shard": n (outcomes, replay)}`.
Returns the step's counts (small: the state machine keeps them); the reduce writes the report
to the bucket and returns `{"report": <its key>}`. A step run again (Step Functions' retry,
a redriven execution) overwrites the same objects: the report is the same.
"""

import json
import os
from functools import cache, lru_cache
from typing import Any

from leadscore.adapters import runtime, shards
from leadscore.adapters.observability import logger

#: The steps the state machine runs (`make lint` checks its definition against them).
STEPS = ("scan", "outcomes", "merge", "replay", "reduce")


@cache
def _store() -> shards.S3ShardStore:
    import boto3  # cold start: the client on the first step, not at import

    bucket = os.environ.get("EVIDENCE_BUCKET")
    if not bucket:
        raise RuntimeError("environment variable EVIDENCE_BUCKET is not set (see template.yaml EvidenceFunction)")
    return shards.S3ShardStore(boto3.client("s3"), bucket)


@lru_cache(maxsize=4)
def _job_at(key: str) -> dict[str, Any]:
    """A job uploaded by the client (never changed once there: cached for the warm container)."""
    try:
        job: dict[str, Any] = json.loads(_store().get(key))
    except KeyError:
        raise ValueError(f"job: no object {key!r} in the evidence bucket (uploaded by make preview|calibrate "
                         "STACK=..., kept 3 days)") from None
    return job


def _job(event: dict[str, Any]) -> dict[str, Any]:
    job = event.get("job")
    if isinstance(job, str):
        return _job_at(job)
    if isinstance(job, dict):
        return job
    raise ValueError("job: the job (a JSON object) or the key of its JSON in the evidence bucket")


def _number(event: dict[str, Any], name: str) -> int:
    value = event.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not a whole number")
    return value


@logger.inject_lambda_context(clear_state=True, log_event=False)  # a job holds rules and outcomes
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step = event.get("step")
    if step not in STEPS:
        raise ValueError(f"step: {step!r} is not one of {', '.join(STEPS)}")
    job, store = _job(event), _store()
    table = runtime.store().table
    result: dict[str, Any]
    if step == "scan":
        result = shards.scan_segment(table, store, job, _number(event, "segment"))
    elif step == "outcomes":
        result = shards.find_outcomes(table, store, job, _number(event, "shard"))
    elif step == "merge":
        result = shards.merge_outcomes(store, job)
    elif step == "replay":
        result = shards.replay_shard(table, store, job, _number(event, "shard"))
    else:
        shards.reduce(store, job)
        result = {"report": shards.report_name(job["run"])}
    logger.info("evidence step", extra={"step": step, "run": job.get("run"), **result})
    return result
