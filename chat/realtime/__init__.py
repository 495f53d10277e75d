"""The real-time edge: Socket.IO namespaces (``/client``, ``/agent``, ``/rasa``), their
guards and rooms.

Everything that knows about python-socketio lives here (the fan-out listener sees only
the ``Audience`` protocol), so another transport could replace it without touching the
services. python-socketio (``sio``) runs on Parley's own lean Engine.IO websocket loop
(``engine``); client events take a lean path to the namespaces (``dispatch``), room
emits are encoded once for every member (``broadcast``), and packets are JSON through
orjson (``wire``).
"""
