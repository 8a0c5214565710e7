"""The camera gateway: cameras in, frames out to the service (`gad gateway`, `gad stream
--source`).

    backoff   the reconnect policy (capped exponential backoff with jitter)
    config    the gateway's YAML file, validated
    camera    one camera: a decoding thread (runtime/sources.py) and its stream to the
              service (service/client.py), each reconnected on its own, forever
    metrics   its Prometheus metrics (per camera)
    run       many cameras, /metrics and /healthz, JSON-line logs of state changes
"""
