"""HTTP for every backend: one pooled session with retries, timeouts and deadlines (http.py),
and bounded reading of what servers send: bodies (body.py), NDJSON lines (ndjson.py) and
server-sent events (sse.py). It knows no server's API; a backend gives it its words."""
