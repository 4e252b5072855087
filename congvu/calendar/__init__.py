"""CalDAV server (RFC 4791/6578/6638) on Starlette."""
