"""Admin CLI commands and web admin pages."""
