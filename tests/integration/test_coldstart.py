"""The cold-start harness of `make bench` (bench/coldstart.py), fast: a fresh interpreter per
function really handles its sample event (AWS answered in-process), and the first
invocation loads the pre-validated rules, importing neither pydantic nor yaml. Whether the
ratios hold is `make bench`'s call (timing here would be noise)."""

from __future__ import annotations

import math

import pytest

from bench import coldstart


@pytest.mark.parametrize(("function", "call"), [
    ("collect", "PutItem"),  # the event's conditional write
    ("route", "TransactWriteItems"),  # the routing transaction
    ("feedback", "TransactWriteItems"),  # the feedback and the account, its body checked without pydantic
    ("assign", "TransactWriteItems"),  # a lead's reassignment: the routing transaction
    ("sdrs", "TransactWriteItems"),  # a lead's pause: the SDR's record and the pool records' copies
    ("erase", "BatchGetItem"),  # an id nobody has: the contact looked up, then whether it was erased before
])
def test_a_first_invocation_handles_its_sample_without_validating_the_rules(function: str, call: str) -> None:
    measured = coldstart.measure_function(coldstart.FUNCTIONS_DIR / function, runs=1)
    # the handler ran its real path (measure_function raises when the sample was not handled)
    assert call in measured.calls
    assert not {"pydantic", "yaml"} & set(measured.loaded), (
        f"{function}'s first invocation imported {measured.loaded}: is config/compiled.json stale? "
        "(make config)")
    assert 0 < measured.function_s <= measured.first_s
    assert measured.baseline_s > 0 and math.isfinite(measured.first_ratio)


def test_every_function_has_a_sample_event() -> None:
    with_handler = {p.name for p in coldstart.FUNCTIONS_DIR.iterdir() if (p / "app.py").exists()}
    assert with_handler <= set(coldstart.SAMPLES)
