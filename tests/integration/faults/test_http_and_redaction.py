"""One worker, two concerns of untrusted input and stored content.

- HTTP fuzzing (hypothesis): random bodies, paths and query strings against every worker
  endpoint that takes input — ``/overseer/sql``, ``/overseer/stats``, ``/readyz``, and the
  ``/api/v1`` API (alerts, silences, detections, kill-switch release/approve, whoami, openapi)
  — never get a 5xx; every 4xx says what was wrong; the worker stays up.
- Redaction: with ``OVERSEER_REDACT_FIELDS=content,tool_arguments`` the stored rows carry the
  marker and a sha256 of the original in ``content_hash`` / ``tool_arguments_hash``, while the
  rules still saw the original (the destructive-shell rule fires on the redacted argument).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.ids import new_event_id
from tests.integration.faults.common import now_minus, send
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[WorkerProcess]:
    w = WorkerProcess(tmp_path_factory.mktemp("http") / "home", kafka_bootstrap,
                      env={"OVERSEER_REDACT_FIELDS": "content,tool_arguments"})
    w.start()
    try:
        yield w
    finally:
        w.stop()


def call(worker: WorkerProcess, method: str, path: str, body: bytes | None = None,
         content_type: str = "application/json") -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", data=body, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def assert_handled(status: int, body: bytes, what: str) -> None:
    assert status < 500, f"{what} -> {status}: {body[:300]!r}"
    if 400 <= status < 500:
        assert body.strip(), f"{what} -> {status} without a message"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda k: st.lists(k, max_size=3) | st.dictionaries(st.text(max_size=8), k, max_size=3),
                    max_leaves=10)
BODIES = st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()) | st.sampled_from([
    b"", b"{", b"null", b"[]", b'{"sql": null}', b'{"sql": 7}', b'{"sql": "SELECT 1; DROP TABLE events"}',
    b'{"sql": "INSERT INTO events VALUES"}', b'{"sql": "SELECT * FROM nowhere"}', b'{"sql": "SELECT \\u0000"}',
    b'{"sql": "' + b"SELECT " + b"(" * 3000 + b'"}', "{\"sql\": \"SELECT '\ud800'\"}".encode("utf-8", "surrogatepass"),
    b'\xff\xfe', b'{"reason": "' + b"x" * 100_000 + b'"}', b'{"scope": {"kind": "fleet", "value": ""}}',
    b'{"matchers": [{"name": "", "value": "", "op": "=~", "regex": "(a+)+$"}], "duration_s": 1e309}'])
SEGMENT = st.text(max_size=20).map(lambda s: urllib.parse.quote(s, safe="")) | st.sampled_from(
    ["..", "%00", "%2e%2e", "a" * 3000, "%ff", "-1", "1e309"])
QUERY = st.dictionaries(st.sampled_from(["limit", "since", "state", "all", "rule_id", "severity", "x", "q"]),
                        st.text(max_size=12) | st.sampled_from(["-1", "1e309", "99999999999999999999", "NaN", ""]),
                        max_size=3).map(urllib.parse.urlencode)
POSTS = ["/overseer/sql", "/api/v1/alerts/{}/ack", "/api/v1/alerts/{}/resolve", "/api/v1/alerts/{}/silence",
         "/api/v1/silences", "/api/v1/silences/{}/expire", "/api/v1/killswitch/release",
         "/api/v1/killswitch/release-requests/{}/approve"]
GETS = ["/overseer/stats", "/readyz", "/healthz", "/api/v1/whoami", "/api/v1/alerts", "/api/v1/alerts/{}",
        "/api/v1/silences", "/api/v1/detections", "/api/v1/killswitch", "/api/v1/openapi.json"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


@FUZZ
@given(path=st.sampled_from(POSTS), segment=SEGMENT, body=BODIES,
       ctype=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]))
def test_posts_with_random_bodies_never_5xx(worker: WorkerProcess, path: str, segment: str, body: bytes,
                                            ctype: str) -> None:
    target = path.format(segment or "x")
    status, reply = call(worker, "POST", target, body, ctype)
    assert_handled(status, reply, f"POST {target} {body[:80]!r}")


@FUZZ
@given(path=st.sampled_from(GETS), segment=SEGMENT, query=QUERY)
def test_gets_with_random_paths_and_queries_never_5xx(worker: WorkerProcess, path: str, segment: str,
                                                      query: str) -> None:
    target = path.format(segment or "x") + (f"?{query}" if query else "")
    status, reply = call(worker, "GET", target)
    assert_handled(status, reply, f"GET {target}")


def test_sql_endpoint_says_what_is_wrong(worker: WorkerProcess) -> None:
    for body, expect in ((b"{", "JSON object"), (b"[]", '"sql"'), (b'{"sql": 1}', '"sql"'),
                         (b'{"sql": "DROP TABLE events"}', "read-only"), (b'{"sql": "SELECT 1; SELECT 2"}', "read-only"),
                         (b'{"sql": "SELECT * FROM no_such_table"}', "no_such_table")):
        status, reply = call(worker, "POST", "/overseer/sql", body)
        assert status == 400 and expect in json.loads(reply)["error"], (body, status, reply[:300])
    assert worker.sql("SELECT count() FROM events")  # and the events table is still there


def test_worker_is_still_up_after_the_fuzzing(worker: WorkerProcess) -> None:
    assert worker.proc is not None and worker.proc.poll() is None
    assert call(worker, "GET", "/healthz")[0] == 200


def test_configured_fields_are_redacted_before_storage(worker: WorkerProcess) -> None:
    secret_prompt = "please summarise the patient record of Jane Roe, DOB 1980-02-03"
    secret_args = "rm -rf /var/lib/postgresql --token=sk-live-abcdef"
    t0 = now_minus(5)
    base = {"tenant_id": "t-acme", "deployment_id": "dep-red", "request_model": "m", "agent_run_id": "run-red"}
    events = [
        {**base, "event_id": new_event_id(), "ts": t0.isoformat(), "event_type": "inference", "operation": "chat",
         "content": secret_prompt},
        {**base, "event_id": new_event_id(), "ts": t0.isoformat(), "event_type": "tool_call", "tool_name": "bash",
         "action_category": "exec", "tool_arguments": secret_args},
        {**base, "event_id": new_event_id(), "ts": t0.isoformat(), "event_type": "tool_call", "tool_name": "bash",
         "action_category": "exec", "tool_arguments": "ls", "tool_arguments_hash": "sha256:from-producer"},
    ]
    asyncio.run(send(worker.bootstrap, worker.topic("events"), events))
    rows = worker.wait_for("SELECT event_id, content, content_hash, tool_arguments, tool_arguments_hash FROM events "
                           "WHERE deployment_id = 'dep-red' ORDER BY event_id", lambda r: len(r) == 3)
    got = {r[0]: r[1:] for r in rows}
    sha = lambda s: "sha256:" + hashlib.sha256(s.encode()).hexdigest()
    assert got[events[0]["event_id"]] == ["[REDACTED]", sha(secret_prompt), "", ""]
    assert got[events[1]["event_id"]] == ["", "", "[REDACTED]", sha(secret_args)]
    assert got[events[2]["event_id"]] == ["", "", "[REDACTED]", "sha256:from-producer"]  # the producer's hash kept
    dump = json.dumps(worker.sql("SELECT * FROM events WHERE deployment_id = 'dep-red'"))
    assert secret_prompt not in dump and "sk-live-abcdef" not in dump
    # the rules saw the original: the destructive-shell rule fired on the redacted argument
    worker.wait_for("SELECT count() FROM detections FINAL WHERE rule_id = 'agent_destructive_shell' "
                    "AND deployment_id = 'dep-red'", lambda r: r[0][0] == 1)
    assert worker.get("/overseer/stats")["counters"]["redacted_values"] == 3
    leaked = json.dumps(worker.sql("SELECT output, evidence FROM detections WHERE deployment_id = 'dep-red'"))
    assert "sk-live-abcdef" not in leaked, leaked
