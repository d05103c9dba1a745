"""The bus path (`functions/score_from_bus/app.py`) never raises on hostile input: a raise
only makes EventBridge retry the same bad event for a day. Bad messages are recorded as
rejected; nothing reaches the table that DynamoDB would refuse."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from local.apigw import lambda_context
from tests.fuzz.fakes import fake_store
from tests.fuzz.strategies import Raw, any_text, hostile_value, json_values, mutated_message, timestamps, valid_message
from tests.fuzz.tally import TALLY, fuzz_settings


@cache
def _config() -> Any:
    from leadscore.rulesfiles.loading import load_config

    return load_config()


def _plain(value: Any) -> Any:
    """A `Raw` piece as the value EventBridge would hand over (its JSON decoded), or kept as
    text where Python's json cannot decode it (the bus would not deliver that either)."""
    if isinstance(value, Raw):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


bus_times = st.one_of(timestamps, st.sampled_from(["2026-11-02T09:00:00Z", "2026-11-02T09:00:00", "Z",
                                                   "0001-01-01T00:00:00Z"]))


@fuzz_settings(800)
@given(detail=st.one_of(valid_message(), mutated_message(), hostile_value, json_values),
       time=st.one_of(st.none(), bus_times),
       source=st.one_of(st.sampled_from(["com.example.product", "com.example.productx", "crm"]), any_text),
       detail_type=st.sampled_from(["Tracking Event", "", "Other"]))
def test_bus_events_never_raise(detail: Any, time: Any, source: Any, detail_type: str) -> None:
    from leadscore.services.collect import Collector

    from functions.score_from_bus.app import lambda_handler

    store, table = fake_store()
    event = {"version": "0", "id": "fuzz", "detail-type": detail_type, "source": source,
             "account": "123456789012", "region": "us-east-1", "resources": [], "detail": _plain(detail)}
    if time is not None:
        event["time"] = time
    note(f"source={source!r} time={time!r} detail={str(event['detail'])[:600]}")
    TALLY.add("EventBridge Tracking Event")
    answer = lambda_handler(event, lambda_context("ScoreFromBusFunction"), collector=Collector(store, _config()))
    # a bot (its context.userAgent) is neither stored nor rejected as bad: counted apart, recorded with the reason
    assert answer["accepted"] + answer["duplicates"] + answer["rejected"] + answer.get("bots", 0) == 1, answer
    assert table.event_writes <= 1 and table.rejection_writes <= 1, table.writes
