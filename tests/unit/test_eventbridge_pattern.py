"""The local EventBridge pattern matcher (tests/support/eventbridge.py)."""

from __future__ import annotations

import pytest

from tests.support.eventbridge import PatternError, matches, validate_pattern

EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Tracking Event",
    "source": "crm.hubspot",
    "account": "123456789012",
    "time": "2026-11-22T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::bucket-a", "arn:aws:s3:::bucket-b"],
    "detail": {
        "type": "track",
        "event": "Demo Requested",
        "userId": "u-1",
        "score": 42.5,
        "count": 3,
        "flag": True,
        "nothing": None,
        "ip": "10.0.3.7",
        "file": "report.PDF",
        "tags": ["vip", "emea"],
        "context": {"page": {"url": "https://acme.com/pricing", "path": "/pricing"}},
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 0}],
    },
}


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"detail-type": ["Tracking Event"]},
        {"detail-type": ["Other", "Tracking Event"]},
        {"source": [{"prefix": "crm."}]},
        {"source": [{"suffix": ".hubspot"}]},
        {"source": [{"prefix": {"equals-ignore-case": "CRM."}}]},
        {"detail": {"file": [{"suffix": {"equals-ignore-case": ".pdf"}}]}},
        {"detail": {"event": [{"equals-ignore-case": "demo requested"}]}},
        {"detail": {"event": [{"wildcard": "Demo *"}]}},
        {"detail": {"event": [{"anything-but": "Page Viewed"}]}},
        {"detail": {"event": [{"anything-but": ["Page Viewed", "Email Opened"]}]}},
        {"detail": {"event": [{"anything-but": {"prefix": "Email"}}]}},
        {"detail": {"event": [{"anything-but": {"suffix": "Opened"}}]}},
        {"detail": {"event": [{"anything-but": {"equals-ignore-case": ["page viewed"]}}]}},
        {"detail": {"score": [{"numeric": [">", 40, "<=", 42.5]}]}},
        {"detail": {"count": [{"numeric": ["=", 3]}]}},
        {"detail": {"count": [3.0]}},
        {"detail": {"flag": [True]}},
        {"detail": {"nothing": [None]}},
        {"detail": {"userId": [{"exists": True}]}},
        {"detail": {"email": [{"exists": False}]}},
        {"detail": {"missing": {"deeper": [{"exists": False}]}}},
        {"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}},
        {"detail": {"context": {"page": {"path": ["/pricing"]}}}},
        {"detail": {"tags": ["emea"]}},
        {"resources": [{"suffix": "bucket-b"}]},
        {"detail": {"items": {"sku": ["A-1"]}}},
        {"detail": {"items": {"sku": [{"prefix": "B-"}], "qty": [{"numeric": ["=", 0]}]}}},
        {"detail": {"items": {"qty": [{"numeric": [">", 1]}]}}},
        {"$or": [{"source": ["nope"]}, {"detail": {"event": ["Demo Requested"]}}]},
        {
            "detail-type": ["Tracking Event"],
            "detail": {"type": ["track", "page"], "count": [{"numeric": [">=", 3]}]},
        },
    ],
)
def test_matching_patterns(pattern: dict) -> None:
    validate_pattern(pattern)
    assert matches(pattern, EVENT)


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail-type": ["Account Score Changed"]},
        {"detail-type": ["tracking event"]},  # exact values are case-sensitive
        {"source": [{"prefix": "CRM."}]},
        {"source": [{"suffix": "hub"}]},
        {"detail": {"event": [{"anything-but": "Demo Requested"}]}},
        {"detail": {"event": [{"anything-but": {"prefix": "Demo"}}]}},
        {"detail": {"event": [{"wildcard": "Demo"}]}},
        {"detail": {"score": [{"numeric": [">", 42.5]}]}},
        {"detail": {"count": ["3"]}},  # a string never equals a number
        {"detail": {"flag": [1]}},  # nor a boolean a number
        {"detail": {"nothing": ["null"]}},
        {"detail": {"userId": [{"exists": False}]}},
        {"detail": {"email": [{"exists": True}]}},
        {"detail": {"email": [{"anything-but": "x"}]}},  # a missing field matches only exists: false
        {"detail": {"ip": [{"cidr": "10.1.0.0/16"}]}},
        {"detail": {"context": {"page": {"path": ["/careers"]}}}},
        {"detail": {"tags": ["apac"]}},
        {"detail": {"items": {"sku": ["C-1"]}}},
        # one element of the array must match the whole nested pattern
        {"detail": {"items": {"sku": ["A-1"], "qty": [{"numeric": ["=", 0]}]}}},
        {"detail": {"userId": {"nested": ["u-1"]}}},
        {"$or": [{"source": ["nope"]}, {"detail": {"event": ["nope"]}}]},
        {"detail-type": ["Tracking Event"], "detail": {"type": ["identify"]}},
    ],
)
def test_non_matching_patterns(pattern: dict) -> None:
    validate_pattern(pattern)
    assert not matches(pattern, EVENT)


def test_pattern_as_json_text() -> None:
    assert matches('{"detail": {"items": {"sku": [{"prefix": "A-"}]}}}', EVENT)


def test_anything_but_on_an_array_matches_when_some_element_differs() -> None:
    assert matches({"detail": {"tags": [{"anything-but": "vip"}]}}, EVENT)
    assert not matches({"detail": {"tags": [{"anything-but": ["vip", "emea"]}]}}, EVENT)


def test_empty_array_does_not_exist() -> None:
    event = {"detail": {"tags": []}}
    assert matches({"detail": {"tags": [{"exists": False}]}}, event)
    assert not matches({"detail": {"tags": [{"exists": True}]}}, event)


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail-type": "Tracking Event"},
        {"detail": {"x": [{"unknown-op": 1}]}},
        {"detail": {"x": [{"prefix": "a", "suffix": "b"}]}},
        {"$or": []},
    ],
)
def test_invalid_patterns_are_rejected(pattern: dict) -> None:
    with pytest.raises(PatternError):
        validate_pattern(pattern)


def test_bad_numeric_operator_is_an_error() -> None:
    with pytest.raises(PatternError):
        matches({"detail": {"count": [{"numeric": ["~", 3]}]}}, EVENT)
