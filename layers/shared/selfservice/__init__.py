"""Shared package of the self-service center: domain, catalog, storage, tokens, mail and rendering.

Deployed as a Lambda layer; on the test path through pytest's ``pythonpath``.
"""
