"""The real-time edge: Socket.IO namespaces (``/client``, ``/agent``), their guards and rooms.

Everything that knows about python-socketio lives here (and the fan-out listener only
through an ``emit`` protocol), so another transport could replace it without touching
the services.
"""
