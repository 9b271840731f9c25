"""The ``cairn`` command line: thin, it parses, calls a service and renders."""
