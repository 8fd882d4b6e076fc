"""Sub-commands of the ``glassjax`` command line, one module each (see ``glassjax.cli``)."""
