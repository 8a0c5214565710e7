"""Action events of live streams, delivered to a real Redis (Streams) and read back: they
equal `/classify`'s segments of the same rows, with the default rule and with thresholds; a
stream resumed on another replica continues its open segment under the same id and
delivers what the first replica stored but never got out; `GET /v1/events` shows a key
only its own tenant's events."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.sync.client import connect

from service.api.deps import EXPIRY_GRACE_S
from tests.service import events_support
from tests.service.events_support import (
    FPS,
    SseReader,
    as_segments,
    check_pairs,
    classify_segments,
    dead_url,
    redis_events,
    spans,
    stream_and_end,
    uvicorn_app,
    wait_until,
)
from tests.service.streaming import client, features_message, stream_rows

package, rows = events_support.package, events_support.rows
plain_runs = (
    events_support.plain_runs
)  # autouse: the plain-runs rule (events_support.RUNS)  # fixtures

THRESHOLDS = {"event_min_score": 0.19, "event_min_frames": 2, "event_max_gap": 1}
RUNS = events_support.RUNS  # every run of one label


@pytest.mark.parametrize("rule", [RUNS, THRESHOLDS], ids=["runs", "thresholds"])
def test_a_live_streams_events_equal_classify_segments(
    package, rows, redis_url: str, redis_prefix: str, rule: dict
) -> None:
    key = f"{redis_prefix}:events"
    sink = f"{redis_url}?key={key}"
    with client(package, event_sinks=sink, **rule) as http:
        expected = classify_segments(http, rows)
        with http.websocket_connect("/v1/streams/cam-1") as ws:
            assert ws.receive_json()["type"] == "ready"
            stream_and_end(ws, rows)
        wait_until(lambda: len(redis_events(redis_url, key)) == 2 * len(expected), what="events")
    events = redis_events(redis_url, key)
    assert len(expected) >= 4 and as_segments(events) == spans(expected)
    check_pairs(events)
    ended = [e for e in events if e["event"] == "ended"]
    for event, segment in zip(ended, expected, strict=True):
        assert event["mean"] == pytest.approx(segment["score"], abs=2e-6)
        assert event["peak"] == pytest.approx(segment["peak"], abs=2e-6)
        assert event["label"] == segment["label"] and event["stream"] == "cam-1"
        assert event["tenant"] is None and event["model"]["name"]
        assert event["frames"] == event["end_row"] - event["start_row"]
        assert event["id"] == f"{event['segment']}:ended"
    assert {e["reason"] for e in ended[:-1]} <= {"gap", "next"}
    assert ended[-1]["reason"] in ("end", "gap", "next")  # "end": the stream's end
    assert events[0]["event"] == "started" and events[0]["start_row"] == 0
    if rule is THRESHOLDS:  # the thresholds merge and drop: fewer, longer segments than runs
        with client(package, **RUNS) as http:
            assert len(classify_segments(http, rows)) > len(expected)


def test_a_resume_on_another_replica_continues_the_open_segment_and_loses_nothing(
    package, rows, redis_url: str, redis_prefix: str
) -> None:
    """Replica A's only sink is down all along: the events it makes stay in the stream's
    state (the outbox). The stream resumes on replica B in the middle of a segment: B
    publishes A's events again, continues the open segment with its id, and the sink
    gets every event of the clip once (Redis: one entry per id)."""
    key = f"{redis_prefix}:events"
    shared = {"redis_url": redis_url, "redis_prefix": redis_prefix, **THRESHOLDS}
    with client(package, **THRESHOLDS) as http:
        expected = classify_segments(http, rows)
    cut = next(  # a row in the middle of a segment, past the first
        round(s["start"] * FPS) + 2
        for s in expected[1:]
        if round((s["end"] - s["start"]) * FPS) >= 4
    )
    a_sinks = {"event_sinks": dead_url("redis"), "event_drain_s": 0, "event_timeout_s": 0.2}
    with client(package, **shared, **a_sinks) as a, a.websocket_connect("/v1/streams/door") as ws:
        ws.receive_json()
        stream_rows(ws, rows[:cut], FPS)
    with (
        client(package, **shared, event_sinks=f"{redis_url}?key={key}") as b,
        b.websocket_connect("/v1/streams/door") as ws,
    ):
        ready = ws.receive_json()
        assert ready["resumed"] and ready["next_seq"] == cut
        stream_and_end(ws, rows[cut:], start=cut)
        wait_until(lambda: len(redis_events(redis_url, key)) == 2 * len(expected), what="events")
    events = redis_events(redis_url, key)
    assert as_segments(events) == spans(expected)
    check_pairs(events)
    # Replica A's sink was down all along: what it made reached Redis through B's replay
    # of the stream's outbox. (Whether the spanning segment's `started` came from A or B
    # depends on where the rule's min_frames fell; its `ended` is B's, with A's id.)
    assert [e for e in events if e["end_row"] <= cut], "none of replica A's events arrived"
    spanning = next(
        e for e in events if e["start_row"] < cut < e["end_row"] and e["event"] == "ended"
    )
    assert spanning["segment"].endswith(f":{spanning['start_row']}")  # the id A would give


def test_a_stream_left_mid_action_ends_it_as_expired_after_its_ttl(
    package, rows, redis_url: str, redis_prefix: str
) -> None:
    """A camera that leaves mid-action without `end` and never comes back: once its state
    expires (GAD_STREAM_TTL_S, here 1 s), the action's `ended` is published with reason
    `expired`, so no consumer waits for it forever. One that comes back within its TTL
    continues the action and ends it itself: no `expired`; nor for one taken over by a
    second connection before the first closed."""
    key = f"{redis_prefix}:events"
    sink = f"{redis_url}?key={key}&dedup_s=0"  # a second `ended` of one id would show
    with client(package, event_sinks=sink, stream_ttl_s=1.0) as http:
        expected = classify_segments(http, rows)
        k = next(i for i, s in enumerate(expected) if i and (s["end"] - s["start"]) * FPS >= 4)
        cut = round(expected[k]["start"] * FPS) + 2  # two rows into segment k
        for stream in ("gone", "back"):
            with http.websocket_connect(f"/v1/streams/{stream}") as ws:
                ws.receive_json()
                stream_rows(ws, rows[:cut], FPS)
        with http.websocket_connect("/v1/streams/back") as ws:
            assert ws.receive_json()["resumed"]
            stream_and_end(ws, rows[cut:], start=cut)
        with http.websocket_connect("/v1/streams/taken") as first:
            first.receive_json()
            stream_rows(first, rows[:cut], FPS)
            with http.websocket_connect("/v1/streams/taken") as second:  # takes it over
                assert second.receive_json()["resumed"]
                stream_and_end(second, rows[cut:], start=cut)
        last_left = time.monotonic()

        def expired() -> list[dict]:
            return [e for e in redis_events(redis_url, key) if e.get("reason") == "expired"]

        wait_until(lambda: bool(expired()), timeout_s=10, what="the expired action's end")
        # past the TTL and grace of the last connection that left (and a margin to publish)
        time.sleep(max(0.0, last_left + 1.0 + EXPIRY_GRACE_S + 1.0 - time.monotonic()))
    events = redis_events(redis_url, key)
    gone = [e for e in events if e["stream"] == "gone"]
    back = [e for e in events if e["stream"] == "back"]
    taken = [e for e in events if e["stream"] == "taken"]
    check_pairs(gone)
    assert expired() == [gone[-1]]  # one, the last event of the stream that left
    assert gone[-1]["start_row"] == cut - 2 and gone[-1]["end_row"] <= cut
    assert as_segments(gone)[:-1] == spans(expected)[:k]  # the segments before, as ever
    for stream in (back, taken):
        check_pairs(stream)
        assert as_segments(stream) == spans(expected)
        assert "expired" not in {e.get("reason") for e in stream}


def test_copies_of_an_event_carry_one_id(package, rows, redis_url: str, redis_prefix: str) -> None:
    """Without the Redis sink's de-duplication (dedup_s=0) a resume shows its at-least-once
    side: events A delivered and B published again are copies — the same id, the same
    event — never a second id for one segment."""
    key = f"{redis_prefix}:events"
    shared = {"redis_url": redis_url, "redis_prefix": redis_prefix}
    sink = {"event_sinks": f"{redis_url}?key={key}&dedup_s=0"}
    with client(package, **shared, **sink) as a, a.websocket_connect("/v1/streams/cam") as ws:
        ws.receive_json()
        stream_rows(ws, rows[:20], FPS)
        expected = classify_segments(a, rows)
    made_by_a = len(redis_events(redis_url, key))
    with client(package, **shared, **sink) as b, b.websocket_connect("/v1/streams/cam") as ws:
        ws.receive_json()
        stream_and_end(ws, rows[20:], start=20)
        wait_until(lambda: len(redis_events(redis_url, key)) >= 2 * len(expected), what="events")
    events = redis_events(redis_url, key)
    check_pairs(events)
    assert as_segments(events) == spans(expected)
    copies = len(events) - len({e["id"] for e in events})
    assert 0 <= copies <= made_by_a  # only what was in A's last stored outbox


def test_sse_shows_a_key_only_its_own_tenants_events(package, rows) -> None:
    keys = {"api_keys": ["key-a", "key-b"]}
    with uvicorn_app(package, **keys) as url:
        assert httpx.get(f"{url}/v1/events", timeout=5).status_code == 401
        a = SseReader(f"{url}/v1/events", {"authorization": "Bearer key-a"})
        b_one = SseReader(f"{url}/v1/events?token=key-b&stream=cam-2")
        assert a.status == 200 and a.content_type.startswith("text/event-stream")
        ws_url = url.replace("http", "ws") + "/v1/streams"
        for key, stream in (("key-a", "cam-1"), ("key-b", "cam-1"), ("key-b", "cam-2")):
            with connect(f"{ws_url}/{stream}?token={key}") as ws:
                ws.recv()
                for seq, row in enumerate(rows[:12]):
                    ws.send(json.dumps(features_message(row, seq=seq, ts=seq / FPS)))
                    ws.recv()
                ws.send('{"type": "end"}')
                ws.recv()
        wait_until(lambda: a.events and b_one.events and a.events[-1]["event"] == "ended")
        wait_until(lambda: b_one.events[-1]["event"] == "ended")
        a.close()
        b_one.close()
    tenants = {e["tenant"] for e in a.events}
    assert len(tenants) == 1 and {e["stream"] for e in a.events} == {"cam-1"}
    assert {e["stream"] for e in b_one.events} == {"cam-2"}
    assert {e["tenant"] for e in b_one.events} != tenants
    assert as_segments(a.events) == as_segments(b_one.events)  # the same rows, the same events


def test_the_demo_page_lists_the_streams_events() -> None:
    from service.api.http import STATIC

    page = (STATIC / "index.html").read_text()
    assert "new EventSource(url)" in page and '"/v1/events?stream="' in page
    assert 'addEventListener("started"' in page and 'addEventListener("ended"' in page
