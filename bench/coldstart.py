"""Cold start: a function's import and client set-up against `import boto3` + the same clients.

Each measurement runs in a fresh interpreter (as a new Lambda execution environment would),
several times; the median is kept. The function's interpreter has only its code folder and
the layer (`shared/`) on `sys.path`, and the template's environment variables.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.stack import AWS_ENV, CONFIG_DIR, REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"

_FUNCTION_SCRIPT = """
import sys, time, json
sys.path[:0] = [{code!r}, {layer!r}]
started = time.perf_counter()
import app
from leadscore import runtime
for name in {clients!r}:
    getattr(runtime, name)().client
ready = time.perf_counter()
runtime.config()
print(json.dumps({{"init": ready - started, "config": time.perf_counter() - ready}}))
"""

_BASELINE_SCRIPT = """
import time, json
started = time.perf_counter()
import boto3
for service in {services!r}:
    boto3.client(service)
print(json.dumps({{"init": time.perf_counter() - started}}))
"""

_SERVICES = {"store": "dynamodb", "publisher": "events"}


@dataclass
class ColdStart:
    function: str
    clients: list[str]
    function_s: float
    baseline_s: float
    config_s: float
    top_imports: list[tuple[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.function_s / self.baseline_s


def clients_of(code_dir: Path) -> list[str]:
    """The runtime clients a handler uses (publisher only where it puts events on the bus)."""
    source = (code_dir / "app.py").read_text()
    return [name for name in ("store", "publisher") if f"runtime.{name}()" in source]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "LEADSCORE_"))}
    env.update(AWS_ENV)
    env.update({"TABLE_NAME": "leadscore-Table", "EVENT_BUS_NAME": "leadscore-events",
                "EVENT_RETENTION_DAYS": "400", "LEADSCORE_CONFIG_DIR": str(CONFIG_DIR),
                "POWERTOOLS_SERVICE_NAME": "leadscore", "POWERTOOLS_METRICS_NAMESPACE": "LeadScore",
                "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_TRACE_DISABLED": "true",
                "PYTHONDONTWRITEBYTECODE": "1"})
    env.pop("PYTHONPATH", None)
    return env


def _run(script: str, cwd: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *extra, "-c", script], cwd=cwd, env=_env(), capture_output=True,
                          text=True, check=False, timeout=120)


def _measure(script: str, cwd: Path, runs: int) -> list[dict[str, float]]:
    results = []
    for _ in range(runs):
        done = _run(script, cwd)
        if done.returncode != 0:
            raise RuntimeError(f"cold start measurement failed in {cwd}:\n{done.stderr[-2000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def top_imports(code_dir: Path, clients: list[str], count: int = 12) -> list[tuple[str, float]]:
    """The heaviest imports of the function's cold start (`python -X importtime`), cumulative ms."""
    script = _FUNCTION_SCRIPT.format(code=str(code_dir), layer=str(REPO_ROOT / "shared"), clients=clients)
    done = _run(script, code_dir, ("-X", "importtime"))
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if parts[1].isdigit():
            rows.append((parts[2], int(parts[1]) / 1000))
    top_level = [(name.strip(), ms) for name, ms in rows if "." not in name.strip()]
    return sorted(top_level, key=lambda row: -row[1])[:count]


def run_coldstart(runs: int = 5) -> list[ColdStart]:
    results = []
    for code_dir in sorted(p for p in FUNCTIONS_DIR.iterdir() if (p / "app.py").exists()):
        clients = clients_of(code_dir)
        script = _FUNCTION_SCRIPT.format(code=str(code_dir), layer=str(REPO_ROOT / "shared"), clients=clients)
        baseline = _BASELINE_SCRIPT.format(services=[_SERVICES[c] for c in clients])
        # interleave so that a busy machine disturbs both sides alike
        function_runs, baseline_runs = [], []
        for _ in range(runs):
            function_runs += _measure(script, code_dir, 1)
            baseline_runs += _measure(baseline, code_dir, 1)
        results.append(ColdStart(
            function=code_dir.name, clients=clients,
            function_s=statistics.median(r["init"] for r in function_runs),
            baseline_s=statistics.median(r["init"] for r in baseline_runs),
            config_s=statistics.median(r["config"] for r in function_runs)))
    return results
