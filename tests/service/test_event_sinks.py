"""The event sinks against real servers, and what each fault loses (the figures of
docs/events.md): Mosquitto (MQTT, QoS 1, a topic per stream), a webhook receiver that
answers 500 before it recovers (retried, signed) or 400 (refused: dropped, counted), a
Redis stopped and started while events flow (buffered, then delivered; a full buffer drops
its oldest, counted and logged), a broker stopped and started likewise, and a replica
killed (SIGKILL) in the middle of an action while its sinks were down.

Each fault test prints one line `fault: ... made N, delivered N, lost N, copies N`."""

from __future__ import annotations

import json
import logging
import secrets

import pytest
from websockets.sync.client import connect

from tests.service import events_support
from tests.service.events_support import (
    FPS,
    SECRET,
    MqttSubscriber,
    Webhook,
    as_segments,
    check_pairs,
    classify_segments,
    dead_url,
    metric,
    redis_events,
    spans,
    stream_and_end,
    wait_until,
)
from tests.service.streaming import client, features_message, stream_rows

mqtt_url = events_support.mqtt_url  # fixtures
private_mosquitto = events_support.private_mosquitto
package, rows = events_support.package, events_support.rows
plain_runs = events_support.plain_runs  # autouse: the plain-runs rule (RUNS)

FAST_RETRY = {"event_retry_max_s": 0.3, "event_timeout_s": 1.0}


@pytest.fixture(scope="module")
def expected(package, rows) -> list[dict]:
    with client(package, **events_support.RUNS) as http:  # module scope: before plain_runs
        return classify_segments(http, rows)


def made(http) -> int:
    text = http.get("/metrics").text
    return int(sum(metric(text, "gad_events_total", event=e) for e in ("started", "ended")))


def report(fault: str, made_: int, ids: list[str]) -> tuple[int, int]:
    """Print the fault's figures; (lost, copies)."""
    lost, copies = made_ - len(set(ids)), len(ids) - len(set(ids))
    print(f"fault: {fault}: made {made_}, delivered {len(set(ids))}, lost {lost}, copies {copies}")
    return lost, copies


def test_mqtt_publishes_each_event_on_its_streams_topic(
    package, rows, expected, mqtt_url: str
) -> None:
    prefix = f"gadtest/{secrets.token_hex(4)}"
    subscriber = MqttSubscriber(mqtt_url, f"{prefix}/#")
    try:
        with client(package, event_sinks=f"{mqtt_url}/{prefix}") as http:
            with http.websocket_connect("/v1/streams/cam-7") as ws:
                ws.receive_json()
                stream_and_end(ws, rows)
            wait_until(lambda: len(subscriber.messages) >= 2 * len(expected), what="MQTT")
    finally:
        subscriber.close()
    assert {topic for topic, _ in subscriber.messages} == {f"{prefix}/-/cam-7"}
    assert as_segments(subscriber.events) == spans(expected)
    check_pairs(subscriber.events)


def test_a_webhook_that_fails_is_retried_and_every_request_is_signed(
    package, rows, expected
) -> None:
    hook = Webhook(plan=[500, 500, 503])  # down for three attempts, then up
    settings = {"event_sinks": hook.url, "event_webhook_secret": SECRET, **FAST_RETRY}
    try:
        with client(package, **settings) as http:
            with http.websocket_connect("/v1/streams/door") as ws:
                ws.receive_json()
                stream_and_end(ws, rows)
            wait_until(lambda: len(hook.accepted) >= 2 * len(expected), what="webhook")
            text = http.get("/metrics").text
            made_ = made(http)
    finally:
        hook.close()
    assert hook.bad_signatures == 0
    assert hook.attempts[:4] == [500, 500, 503, 200]  # the first event, retried in order
    assert as_segments(hook.accepted) == spans(expected)
    assert metric(text, "gad_event_sink_errors_total", sink="webhook") == 3
    print(f"fault: ... {len(hook.attempts)} webhook requests")
    assert report("webhook 500 x3 then 200", made_, [e["id"] for e in hook.accepted]) == (0, 0)


def test_a_webhook_that_refuses_an_event_drops_it_and_counts_it(package, rows, capsys) -> None:
    hook = Webhook(plan=[400])
    settings = {"event_sinks": hook.url, "event_webhook_secret": SECRET, **FAST_RETRY}
    try:
        with client(package, **settings) as http:
            with http.websocket_connect("/v1/streams/door") as ws:
                ws.receive_json()
                stream_and_end(ws, rows[:12])
            wait_until(lambda: len(hook.attempts) >= made(http), what="webhook")
            text = http.get("/metrics").text
            made_ = made(http)
    finally:
        hook.close()
    assert metric(text, "gad_events_dropped_total", sink="webhook", reason="rejected") == 1
    assert len(hook.accepted) == made_ - 1 and hook.attempts[0] == 400
    with capsys.disabled():
        report("webhook 400 to one event", made_, [e["id"] for e in hook.accepted])


def test_redis_stopped_while_events_flow_buffers_and_delivers_after(
    package, rows, expected, private_redis, capsys
) -> None:
    key = "gad:events"
    settings = {"event_sinks": f"{private_redis.url}?key={key}", **FAST_RETRY}
    before: list[dict] = []
    with client(package, **settings) as http, http.websocket_connect("/v1/streams/cam") as ws:
        ws.receive_json()
        stream_rows(ws, rows[:16], FPS)
        wait_until(lambda: len(redis_events(private_redis.url, key)) == made(http))
        before = redis_events(private_redis.url, key)  # no persistence: gone with the restart
        private_redis.stop()
        stream_rows(ws, rows[16:32], FPS, start=16)
        down = made(http) - len(before)
        private_redis.restart()
        stream_and_end(ws, rows[32:], start=32)
        wait_until(lambda: len(before) + len(redis_events(private_redis.url, key)) >= made(http))
        made_ = made(http)
        text = http.get("/metrics").text
    after = redis_events(private_redis.url, key)
    events = before + after
    assert down >= 4 and as_segments(events) == spans(expected)
    check_pairs(events)
    assert metric(text, "gad_event_sink_errors_total", sink="redis") >= 1
    assert metric(text, "gad_events_dropped_total", sink="redis", reason="buffer_full") == 0
    with capsys.disabled():
        assert report("redis stopped, restarted", made_, [e["id"] for e in events]) == (0, 0)


def test_a_full_buffer_drops_its_oldest_counts_and_logs(
    package, rows, private_redis, caplog, capsys
) -> None:
    key = "gad:events"
    settings = {"event_sinks": f"{private_redis.url}?key={key}", "event_buffer": 3, **FAST_RETRY}
    with client(package, **settings) as http, http.websocket_connect("/v1/streams/cam") as ws:
        ws.receive_json()
        private_redis.stop()
        with caplog.at_level(logging.WARNING, logger="service.events.bus"):
            stream_rows(ws, rows[:24], FPS)
            made_while_down = made(http)
            private_redis.restart()
            wait_until(lambda: len(redis_events(private_redis.url, key)) >= 3)
        text = http.get("/metrics").text
        events = redis_events(private_redis.url, key)
    dropped = metric(text, "gad_events_dropped_total", sink="redis", reason="buffer_full")
    assert made_while_down > 3 + 1 and len(events) <= 3 + 1  # the buffer (+ one in flight)
    assert dropped == made_while_down - len(events)
    assert "dropped event" in caplog.text and "is down" in caplog.text
    with capsys.disabled():
        lost, _ = report("redis down, buffer 3", made_while_down, [e["id"] for e in events])
        print(f"fault: ... lost {lost} = gad_events_dropped_total {dropped:g}")
    assert lost == dropped


def test_mqtt_broker_stopped_while_events_flow_delivers_after(
    package, rows, expected, private_mosquitto, capsys
) -> None:
    broker = private_mosquitto
    subscriber = MqttSubscriber(broker.url, "gad/events/#", persistent=True)
    try:
        settings = {"event_sinks": broker.url, **FAST_RETRY}
        with client(package, **settings) as http, http.websocket_connect("/v1/streams/c") as ws:
            ws.receive_json()
            stream_rows(ws, rows[:16], FPS)
            wait_until(lambda: len(subscriber.messages) >= made(http))
            broker.stop()
            stream_rows(ws, rows[16:32], FPS, start=16)
            broker.restart()
            subscriber.reconnect()  # its persistent session holds what came meanwhile
            stream_and_end(ws, rows[32:], start=32)
            try:
                wait_until(lambda: len({e["id"] for e in subscriber.events}) >= made(http))
            except AssertionError as exc:  # say what was missing, for a rare failure here
                text = http.get("/metrics").text
                sinks = [line for line in text.splitlines() if line.startswith("gad_event")]
                log = (broker.folder / broker.log_name).read_text(errors="replace")[-1500:]
                raise AssertionError(
                    f"made {made(http)}, subscriber has {len(subscriber.messages)} messages "
                    f"({len({e['id'] for e in subscriber.events})} ids); {sinks}; broker: {log}"
                ) from exc
            made_ = made(http)
    finally:
        subscriber.close()
    events = subscriber.events
    assert as_segments(events) == spans(expected)
    check_pairs(events)
    with capsys.disabled():
        lost, _ = report("mosquitto stopped, restarted", made_, [e["id"] for e in events])
    assert lost == 0


def test_a_replica_killed_mid_action_loses_no_event_and_gives_each_one_id(
    package, rows, expected, redis_url, redis_prefix, mqtt_url, capsys
) -> None:
    """Replica A (`gad serve`) streams into the middle of an action with its MQTT sink down,
    and is killed; the client resumes on replica B, whose sinks are up. Redis (de-duplicated
    by id) and MQTT (at least once) both end up with every event of the clip, one id each."""
    from bench.launch import served

    cut = next(
        round(s["start"] * FPS) + 2
        for s in expected[1:]
        if round((s["end"] - s["start"]) * FPS) >= 4
    )
    key, prefix = f"{redis_prefix}:events", f"gadtest/{secrets.token_hex(4)}"
    env = {
        "GAD_PROVIDERS": "cpu",
        "GAD_THREADS": "1",
        "GAD_REDIS_URL": redis_url,
        "GAD_REDIS_PREFIX": redis_prefix,
        "GAD_EVENT_RETRY_MAX_S": "0.3",
    }
    redis_sink = f"{redis_url}?key={key}"
    subscriber = MqttSubscriber(mqtt_url, f"{prefix}/#")
    try:
        a_sinks = f"{redis_sink},{dead_url('mqtt')}/{prefix}"
        with (
            served(package, env=env | {"GAD_EVENT_SINKS": a_sinks}) as a,
            connect(f"{a.ws_url}/v1/streams/cam") as ws,
        ):
            ws.recv()
            for seq in range(cut):
                ws.send(json.dumps(features_message(rows[seq], seq=seq, ts=seq / FPS)))
                ws.recv()
            a.process.kill()  # mid-action: no shutdown, no drain
            a.process.wait()
        b_sinks = f"{redis_sink},{mqtt_url}/{prefix}"
        with served(package, env=env | {"GAD_EVENT_SINKS": b_sinks}) as b:
            with connect(f"{b.ws_url}/v1/streams/cam") as ws:
                ready = json.loads(ws.recv())
                assert ready["resumed"] and ready["next_seq"] == cut
                for seq in range(cut, len(rows)):
                    ws.send(json.dumps(features_message(rows[seq], seq=seq, ts=seq / FPS)))
                    ws.recv()
                ws.send('{"type": "end"}')
                ws.recv()
            total = 2 * len(expected)
            wait_until(lambda: len({e["id"] for e in subscriber.events}) >= total, what="MQTT")
            wait_until(lambda: len(redis_events(redis_url, key)) >= total, what="Redis")
    finally:
        subscriber.close()
    stored = redis_events(redis_url, key)
    for events in (stored, subscriber.events):
        assert as_segments(events) == spans(expected)
        check_pairs(events)
    assert len(stored) == total  # de-duplicated by id
    with capsys.disabled():
        report("replica SIGKILL mid-action (Redis)", total, [e["id"] for e in stored])
        lost, _ = report(
            "replica SIGKILL mid-action (MQTT down on A)",
            total,
            [e["id"] for e in subscriber.events],
        )
    assert lost == 0
