"""The HTTP and WebSocket routes: http.py (ops, models, /classify), ws.py (streams),
deps.py (what the routes take from the app, as FastAPI dependencies)."""
