"""Hosted pages: sessions and CSRF, form parsing, page rendering (Jinja2 + Babel), rate limits."""
