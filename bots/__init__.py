"""Bots: the bot API, NLU and the Rasa bridge. Never imports chat or connectors."""
