"""The bus leg of the events path on a throwaway LocalStack: how many events per second
LocalStack's EventBridge moves into the target queues on this machine, with its default settings
and with `IN_MEMORY_CLIENT=1` (localcloud's LOCALCLOUD_THROUGHPUT_SETTINGS). Prints the figures and
writes benchmarks/results/localstack_bus_probe.json.

It starts its own LocalStack (events, sqs, cloudwatch only; from localcloud's LocalStack
virtualenv) on 127.0.0.1:`--port` and `--port`+1 with state under a temporary folder, one after
the other, and stops each by its process group; the project's deployed stack is not touched.
Each gets a bus with 3 rules matching a `patient.created` event (as on the real bus: Kafka
bridge, matching read models, communication), each to its own SQS queue, plus 10 rules that do
not match; then `--events` entries are sent as the relay sends them (10 per PutEvents call, 8
calls at once) and timed until every queue holds all of them. No Lambda, database or Kafka is
involved: this is the floor of the bus leg alone.

    PYTHONPATH=layers/shared:infra:. .venv/bin/python benchmarks/localstack_bus_probe.py \
        [--events 2000] [--port 4621]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra"))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from localcloud.localstack import LOCALSTACK_VENV, venv_python  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "localstack_bus_probe.json"
SOURCE = "therapy-platform.patient-service"
MATCHING = (
    {"source": [{"prefix": "therapy-platform."}]},
    {"source": [SOURCE], "detail-type": [{"prefix": "patient."}]},
    {"source": [SOURCE], "detail-type": ["patient.created"]},
)


def start_localstack(port: int, state: Path, in_memory: bool) -> subprocess.Popen[bytes]:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_localstack/health", timeout=1).close()
    except OSError:
        pass
    else:
        raise RuntimeError(f"something already listens on 127.0.0.1:{port}: choose another --port")
    (state / "tmp").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OVERRIDE_IN_DOCKER": "0",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER": "hypercorn",
        "FILESYSTEM_ROOT": str(state / "fs"),
        "LOCALSTACK_VOLUME_DIR": str(state / "volume"),
        "TMPDIR": str(state / "tmp"),
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SQS_ENDPOINT_STRATEGY": "path",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "SERVICES": "events,sqs,cloudwatch",
    }
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "IN_MEMORY_CLIENT"):
        env.pop(key, None)
    if in_memory:
        env["IN_MEMORY_CLIENT"] = "1"
    log = (state / "localstack.log").open("wb")
    process = subprocess.Popen(
        [str(venv_python(LOCALSTACK_VENV)), "-m", "localstack.runtime.main"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localstack/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"LocalStack did not come up on port {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Its process group: SIGTERM, and SIGKILL if LocalStack's shutdown hangs (it can)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def measure(port: int, events: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "region_name": "eu-central-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "config": Config(max_pool_connections=16),
    }
    bus_client, sqs = boto3.client("events", **options), boto3.client("sqs", **options)
    bus_client.create_event_bus(Name="probe")
    queues = []
    for index, pattern in enumerate(MATCHING):
        url = sqs.create_queue(QueueName=f"probe-{index}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus_client.put_rule(Name=f"match-{index}", EventBusName="probe", EventPattern=json.dumps(pattern))
        bus_client.put_targets(Rule=f"match-{index}", EventBusName="probe", Targets=[{"Id": "q", "Arn": arn}])
        queues.append(url)
    for index in range(10):
        pattern = {"source": ["therapy-platform.other"], "detail-type": [f"other.{index}"]}
        bus_client.put_rule(Name=f"other-{index}", EventBusName="probe", EventPattern=json.dumps(pattern))
    # About the size of a patient snapshot bus message.
    detail = json.dumps({"key": "k", "envelope": {"eventId": "e", "payload": {"filler": "x" * 1200}}})
    entries = [
        {"EventBusName": "probe", "Source": SOURCE, "DetailType": "patient.created", "Detail": detail}
    ] * 10

    def depth(url: str) -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: bus_client.put_events(Entries=entries), range(events // 10)))
    put_s = time.perf_counter() - started
    while min(depth(url) for url in queues) < events and time.perf_counter() - started < 600:
        time.sleep(0.2)
    total_s = time.perf_counter() - started
    return {
        "events": events,
        "put_events_s": round(put_s, 2),
        "all_in_3_queues_s": round(total_s, 2),
        "events_per_s": round(events / total_s, 1),
        "queue_depths": [depth(url) for url in queues],
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--port", type=int, default=4621)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bus-probe-") as folder:
        for offset, (name, in_memory) in enumerate((("default", False), ("in_memory_client", True))):
            process = start_localstack(args.port + offset, Path(folder) / name, in_memory)
            try:
                figures[name] = measure(args.port + offset, args.events)
            finally:
                stop(process)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "what": "LocalStack EventBridge -> 3 SQS queues, fed as the relay feeds it; no Lambda",
        "figures": figures,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    existing: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs = [*existing.get("runs", []), result]
    RESULTS.write_text(json.dumps({**existing, "latest": result, "runs": runs}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
