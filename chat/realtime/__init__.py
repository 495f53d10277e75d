"""The real-time edge: Socket.IO namespaces (``/client``, ``/agent``, ``/rasa``), their
guards and rooms.

Everything that knows about python-socketio lives here (the fan-out listener sees only
the ``Audience`` protocol), so another transport could replace it without touching the
services. python-socketio runs on Parley's own lean Engine.IO websocket loop
(``engine``) and encodes packets as JSON through orjson (``wire``).
"""
