"""Webmail and web calendar (Starlette + Jinja2)."""
