"""Pure domain types: enums, value objects and errors. No I/O here."""
