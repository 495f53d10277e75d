"""Provider connectors: one module per provider. Never imports chat or bots."""
