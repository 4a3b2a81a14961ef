"""Use cases, one module per behaviour: plain functions over the :class:`~selfservice.usecases.ports.Adapters`.

Handlers and page routes call exactly one of them; :mod:`selfservice.bootstrap` wires the adapters.
"""
