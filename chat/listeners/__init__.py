"""What happens after a write: outbox handlers and bus subscribers."""
