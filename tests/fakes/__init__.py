"""Fakes of the outside world: real HTTP servers on 127.0.0.1."""
