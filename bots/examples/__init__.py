"""Example bots: ``support`` (greeting, opening hours, order status, hand-off)."""
