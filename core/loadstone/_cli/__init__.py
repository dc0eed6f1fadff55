"""The pieces of the ``loadstone`` command line; :mod:`loadstone.cli` is the entry point."""
