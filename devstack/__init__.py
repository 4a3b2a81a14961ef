"""The local stack: the whole product on one machine, in one process (``python -m devstack``;
in tests ``devstack.app.start(http_port=0, aws_port=0, seed=False)``). See README."""
