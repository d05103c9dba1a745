"""Previews and calibration at any size (adapters/shards.py, local/mapreduce.py): the table read
in parallel Scan segments, grouped by partition into shards, each shard replayed apart and the
partials reduced give exactly the report of one process reading the table whole; a partition
DynamoDB splits across segments is grouped whole; a person whose ids live in two shards is
replayed whole; 2 processes against a moto server give the same report as 1; steps run again
change nothing; a step run before the one it needs says so."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from leadscore.adapters import shards
from leadscore.adapters.shards import LocalShardStore, new_job
from leadscore.adapters.snapshot import TableSnapshot, scan
from leadscore.adapters.table import Table
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import load_config, load_routing
from leadscore.services.calibrate import calibrate, parse_outcomes
from leadscore.services.preview import preview

from local import mapreduce
from tests.integration.conftest import Pipeline
from tests.integration.test_calibrate import _outcomes
from tests.integration.test_preview import _candidate, _journeys

MERGED_USER = "u-merged"


def _merged_person(pipeline: Pipeline) -> None:
    """An anonymous visitor's events, then an identify that names them: two ids (two partitions)
    of one person, the anonymous one merged into the user."""
    pipeline.send("track", {"anonymousId": "anon-merged", "event": "Demo Link Clicked", "messageId": "m-anon-1"})
    pipeline.send("track", {"anonymousId": "anon-merged", "event": "Webinar Attended", "messageId": "m-anon-2"})
    pipeline.settle()
    pipeline.advance(minutes=5)
    pipeline.send("identify", {"userId": MERGED_USER, "anonymousId": "anon-merged", "messageId": "m-id",
                               "traits": {"email": "cro@merged.io", "title": "CRO"}})
    pipeline.send("group", {"userId": MERGED_USER, "groupId": "merged.io", "messageId": "m-group",
                            "traits": {"name": "merged.io", "website": "https://merged.io", "industry": "Software",
                                       "employees": 200, "address": {"country": "US"}}})
    pipeline.settle()
    pipeline.advance(minutes=5)


@pytest.fixture
def table(pipeline: Pipeline) -> Table:
    _journeys(pipeline)
    _merged_person(pipeline)
    return Table(pipeline.stack.name_of("Table"), client=pipeline.stack.client("dynamodb"))


def _preview_job(tmp_path: Path, pipeline: Pipeline, **sizes: int) -> dict[str, Any]:
    rules = _candidate(tmp_path)
    return new_job("preview", as_of=pipeline.now, candidate_scoring=(rules / "scoring.yaml").read_text(), **sizes)


def _one_process_preview(table: Table, job: dict[str, Any]) -> dict[str, Any]:
    current, candidate, routing = shards.configs(job)
    snapshot = TableSnapshot(scan(table))
    from datetime import datetime

    report = preview(snapshot.persons(), snapshot.accounts, current, candidate, datetime.fromisoformat(job["asOf"]),
                     routing).report()
    return {**report, "window": {"days": None, "since": None}}  # every retained event, as the job asks


def _steps(table: Table, store: LocalShardStore, job: dict[str, Any]) -> dict[str, Any]:
    for segment in range(job["segments"]):
        shards.scan_segment(table, store, job, segment, page_size=3)
    if job["kind"] == "calibrate":
        for shard in range(job["shards"]):
            shards.find_outcomes(table, store, job, shard)
        shards.merge_outcomes(store, job)
    for shard in range(job["shards"]):
        shards.replay_shard(table, store, job, shard)
    return shards.reduce(store, job)


class SplittingScans:
    """A DynamoDB client whose parallel Scan puts each item in the segment its position says
    (so one partition's items land in several segments, as DynamoDB may do), a page at a time."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.segments_of: dict[str, set[int]] = {}

    def __getattr__(self, name: str) -> Any:  # every other call (the reads of ids in another shard)
        return getattr(self.client, name)

    def _all(self, name: str) -> list[dict[str, Any]]:
        found, request = [], {"TableName": name}
        while True:
            page = self.client.scan(**request)
            found += page["Items"]
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda raw: json.dumps(raw, sort_keys=True, default=str))
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def scan(self, *, TableName: str, Segment: int, TotalSegments: int, Limit: int,  # noqa: N803 - boto3's names
             ConsistentRead: bool, ExclusiveStartKey: dict[str, Any] | None = None) -> dict[str, Any]:
        assert ConsistentRead
        mine = [raw for n, raw in enumerate(self._all(TableName)) if n % TotalSegments == Segment]
        start = int(ExclusiveStartKey["at"]["N"]) if ExclusiveStartKey else 0
        page = mine[start:start + Limit]
        for raw in page:
            from leadscore.adapters import items

            self.segments_of.setdefault(items.table_key(shards._Keys(raw))[0], set()).add(Segment)
        answer: dict[str, Any] = {"Items": page}
        if start + Limit < len(mine):
            answer["LastEvaluatedKey"] = {"at": {"N": str(start + Limit)}}
        return answer


def _shards_apart(pipeline: Pipeline) -> int:
    """A shard count that puts the merged person's two ids in different shards."""
    from leadscore.adapters import items

    user, anon = items.contact_pk(f"u:{MERGED_USER}"), items.contact_pk("a:anon-merged")
    return next(n for n in range(2, 50) if shards.shard_of(user, n) != shards.shard_of(anon, n))


def test_shards_give_the_report_of_one_process_even_when_a_segment_splits_a_partition(
        table: Table, pipeline: Pipeline, tmp_path: Path) -> None:
    count = _shards_apart(pipeline)
    job = _preview_job(tmp_path, pipeline, segments=3, shards=count)
    splitting = SplittingScans(table.client)
    store = LocalShardStore(tmp_path / "store")
    report = _steps(Table(table.name, client=splitting), store, job)
    # DynamoDB's right to split a partition across segments was used: some partition is in several
    assert any(len(segments) > 1 for segments in splitting.segments_of.values())
    assert report == _one_process_preview(table, job)
    assert report["newlySdrReady"] == ["crosses.io"] and report["persons"] == 5
    assert json.loads(store.get(f"{job['run']}/report.json")) == report
    # the merged person was replayed whole, its other id read from the table (another shard)
    replayed = [shards.replay_shard(table, store, job, s) for s in range(count)]
    # at most one batch of other shards' contacts per shard (the `e:<email>` stubs, the anonymous
    # id's contact) and one Query: the anonymous id's events (the stubs have none: not asked for)
    assert 2 <= sum(r["foreignReads"] for r in replayed) <= count + 1
    assert MERGED_USER in {row["id"] for row in report["contactsMovingMost"]}


def test_a_step_run_again_changes_nothing_and_a_step_before_its_input_says_so(
        table: Table, pipeline: Pipeline, tmp_path: Path) -> None:
    job = _preview_job(tmp_path, pipeline, segments=2, shards=2)
    store = LocalShardStore(tmp_path / "store")
    with pytest.raises(RuntimeError, match=r"segment\(s\) 0, 1 not scanned yet"):
        shards.replay_shard(table, store, job, 0)
    first = _steps(table, store, job)
    blobs = {name: store.get(name) for name in store.names(job["run"])}
    import time

    time.sleep(1.1)  # a later second: nothing of the moment goes into a blob (gzip's header time)
    again = _steps(table, store, job)  # every step again: a retry, a replay
    assert again == first
    assert {name: store.get(name) for name in store.names(job["run"])} == blobs
    (tmp_path / "store" / shards.partial_name(job["run"], 1)).unlink()
    with pytest.raises(RuntimeError, match=r"shard\(s\) 1 not replayed yet"):
        shards.reduce(store, job)
    with pytest.raises(ValueError, match="segment: 2 is not one of 0..1"):
        shards.scan_segment(table, store, job, 2)


def test_calibration_over_shards_gives_the_report_of_one_process(pipeline: Pipeline, tmp_path: Path) -> None:
    data = _outcomes(pipeline, tmp_path / "outcomes.csv")
    table = Table(pipeline.stack.name_of("Table"), client=pipeline.stack.client("dynamodb"))
    outcomes = parse_outcomes(data.read_text(), data.name)
    job = new_job("calibrate", segments=3, shards=4, as_of=pipeline.now, outcomes=outcomes, target=(0.5, 0.7))
    report = _steps(table, LocalShardStore(tmp_path / "store"), job)
    snapshot = TableSnapshot(scan(table))
    by_account: dict[str, list[Any]] = {}
    for person in snapshot.persons():
        contact = snapshot.contacts.get(person.root)
        if contact is not None and contact.account:
            by_account.setdefault(contact.account, []).append(person)
    alone = calibrate(by_account, snapshot.accounts, outcomes, load_config(), (0.5, 0.7))
    # the steps add what only they read (where the outcomes came from, the accounts' record highs)
    assert {key: report[key] for key in alone} == alone
    assert (report["closed"], report["wins"]) == (41, 15)


def test_processes_and_segments_default_to_the_machine_and_refuse_nonsense(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    monkeypatch.setattr(mapreduce.os, "cpu_count", lambda: 3)
    parser = argparse.ArgumentParser()
    mapreduce.flags(parser)
    assert mapreduce.sizes(parser.parse_args([])) == (3, 12)  # one per CPU, 4 segments per process
    assert mapreduce.sizes(parser.parse_args(["--processes", "2"])) == (2, 8)
    assert mapreduce.sizes(parser.parse_args(["--processes", "1", "--segments", "5"])) == (1, 5)
    # a large table: a shard per 200,000 items (a shard is held in memory while replayed)
    assert mapreduce.sizes(parser.parse_args([]), items=10_000_001) == (3, 51)
    assert mapreduce.sizes(parser.parse_args(["--segments", "5"]), items=10_000_001) == (3, 5)
    for argv, says in ((["--processes", "0"], "--processes: 0"), (["--segments", "0"], "--segments: 0")):
        with pytest.raises(SystemExit) as exit_:
            mapreduce.sizes(parser.parse_args(argv))
        assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_progress_is_one_line_per_step(table: Table, pipeline: Pipeline, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    job = _preview_job(tmp_path, pipeline, segments=3, shards=2)
    err = io.StringIO()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(mapreduce.tempfile, "tempdir", str(scratch))
    report = mapreduce.run(job, table, processes=1, stream=err)
    assert list(scratch.iterdir()) == []  # the blobs' folder is removed after
    lines = err.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["scan", "replay"], lines
    items = sum(1 for _ in scan(table))
    assert mapreduce.item_count(table) == items  # DescribeTable's count (moto's is exact), what sizes a run
    assert re.fullmatch(rf"scan +\[#{{20}}\] 3/3 segments  {items} items, \d+ events, [\d.]+ s", lines[0])
    assert re.fullmatch(rf"replay +\[#{{20}}\] 2/2 shards  {report['persons']} contacts, "
                        rf"{report['events']} events, [\d.]+ s", lines[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on 127.0.0.1 (a free port), serving the state of this process's moto: how
    other processes reach the test's stack (AWS_ENDPOINT_URL, which they inherit)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.mark.slow
def test_two_processes_give_the_report_of_one(table: Table, pipeline: Pipeline, tmp_path: Path,
                                              moto_server: str) -> None:
    job = _preview_job(tmp_path, pipeline, segments=4, shards=4)
    one = mapreduce.run(job, table, processes=1, stream=io.StringIO())
    err = io.StringIO()
    two = mapreduce.run({**job, "run": job["run"] + "-2"}, table, processes=2, stream=err)
    assert two == one == _one_process_preview(table, job)
    assert "4/4 segments" in err.getvalue() and "4/4 shards" in err.getvalue()


def test_a_job_is_checked_before_any_step_runs(pipeline: Pipeline, tmp_path: Path, table: Table) -> None:
    rules = _candidate(tmp_path)
    broken = (rules / "scoring.yaml").read_text().replace("    points: 40\n", "    points: forty\n")
    with pytest.raises(ConfigError, match="points"):
        new_job("preview", segments=2, as_of=pipeline.now, candidate_scoring=broken)
    job = new_job("preview", segments=2, as_of=pipeline.now, candidate_scoring=(rules / "scoring.yaml").read_text())
    assert job["shards"] == 2 and job["kind"] == "preview" and "/" not in job["run"]
    for field, value, says in (("kind", "forecast", "job.kind: one of preview, calibrate"),
                               ("segments", 0, "job.segments: a whole number"),
                               ("run", "a/b", "job.run: a name"),
                               ("asOf", "soon", "job.asOf: an ISO-8601 time"),
                               ("candidate", {}, "job.candidate.scoring")):
        with pytest.raises(ValueError, match=re.escape(says)):
            shards.scan_segment(table, LocalShardStore(tmp_path), {**job, field: value}, 0)
    with pytest.raises(ValueError, match=re.escape("job.target: [low, high]")):
        shards.check_job({**new_job("calibrate", segments=1, as_of=pipeline.now), "target": [0.5, 0.1]})
    # a candidate routing.yaml goes with the job; the current side is the deployment's
    routing_text = (Path(__file__).resolve().parents[2] / "config" / "routing.yaml").read_text()
    job = new_job("preview", segments=1, as_of=pipeline.now, candidate_scoring=broken.replace("forty", "40"),
                  candidate_routing=routing_text)
    current, candidate, routing = shards.configs(job)
    assert routing[1] == load_routing(Path(__file__).resolve().parents[2] / "config" / "routing.yaml")
    assert candidate.scoring != current.scoring


def test_the_stores_keep_blobs_by_name(tmp_path: Path, aws: None) -> None:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="evidence")
    for store in (LocalShardStore(tmp_path / "blobs"), shards.S3ShardStore(client, "evidence", "runs/")):
        assert store.names("r/") == []
        with pytest.raises(KeyError):
            store.get("r/items/00000/00000")
        store.put("r/items/00001/00000", b"b")
        store.put("r/items/00000/00000", b"a")
        store.put("r/items/00000/00000", b"a2")  # a step run again replaces its blob
        store.put("r2/x", b"c")
        assert store.names("r/") == ["r/items/00000/00000", "r/items/00001/00000"]
        assert store.get("r/items/00000/00000") == b"a2"
    assert sorted(o["Key"] for o in client.list_objects_v2(Bucket="evidence")["Contents"])[0] == \
        "runs/r/items/00000/00000"


def test_a_partition_key_has_the_same_shard_in_every_process() -> None:
    import subprocess
    import sys

    keys = [f"C#u:user-{n}" for n in range(50)] + ["A#acme.io"]
    here = [shards.shard_of(key, 7) for key in keys]
    code = f"from leadscore.adapters.shards import shard_of; print([shard_of(k, 7) for k in {keys!r}])"
    for seed in ("1", "2"):  # str hashes differ per process with another seed; the shard must not
        there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout
        assert json.loads(there) == here
    assert len(set(here)) > 1 and shards.shard_of("C#u:a", 1) == 0


def test_a_blob_line_decodes_as_the_scanned_item_does(table: Table) -> None:
    """The shard's reader decodes DynamoDB's JSON itself (the replay step's reading time): the
    very values `unmarshal` gives, for every item of a table the pipeline wrote (binary history
    steps included) and for every type."""
    from leadscore.adapters.table import unmarshal

    raws, request = [], {"TableName": table.name}
    while True:
        page = table.client.scan(**request)
        raws += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raws.append({"n": {"L": [{"N": v} for v in ("1", "1.0", "1E+2", "-0", "3.14", "12345678901234567890")]},
                 "m": {"M": {"a": {"NULL": True}, "b": {"BOOL": False}, "c": {"B": b"\x00\xff"},
                             "d": {"L": [{"S": "x"}, {"M": {}}]}}},
                 "sets": {"M": {"ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"\x01"]}}}})
    assert any(isinstance(v, bytes) for raw in raws for v in unmarshal(raw).values())  # a binary attribute
    for raw in raws:
        line = json.dumps(raw, default=shards._wire, separators=(",", ":")).encode()
        decoded, expected = shards.decode_line(line), unmarshal(raw)
        assert decoded == expected
        assert repr(decoded) == repr(expected)  # the same types too (1 and 1.0 are equal)
