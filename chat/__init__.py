"""Parley: the conversation server."""
