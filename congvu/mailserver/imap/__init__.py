"""IMAP server: pure parser, responses, per-connection state, commands."""
