"""Storage: the database, its migrations, the outbox and the photo store."""
