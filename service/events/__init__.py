"""Action events: every action a stream's labels show, `started` and `ended`, published.

    stream.py   a stream's segmenter (runtime/segments.py, the rule /classify's segments use)
                and its outbox, kept with the stream's state in the feature cache
    bus.py      the bus: a bounded, retried buffer per sink, and `GET /v1/events` listeners
    sinks.py    Redis Streams, MQTT, webhooks (GAD_EVENT_SINKS)

The event type is service/wire.py `Event`; docs/events.md has the rule, the guarantee and
what each sink fault loses.
"""

from service.events.bus import EventBus, Receipt, Subscription
from service.events.sinks import Sink, SinkFailed, SinkRejected, open_sinks, signature
from service.events.stream import StreamEvents, StreamInfo

__all__ = [
    "EventBus",
    "Receipt",
    "Sink",
    "SinkFailed",
    "SinkRejected",
    "StreamEvents",
    "StreamInfo",
    "Subscription",
    "open_sinks",
    "signature",
]
