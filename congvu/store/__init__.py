"""PostgreSQL store: pool, embedded server, migrations and one repository module per aggregate. All SQL lives here."""
