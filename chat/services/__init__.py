"""Use cases. Web and socket edges call these; these call the database and the bus."""
