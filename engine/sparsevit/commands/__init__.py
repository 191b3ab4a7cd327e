"""Sub-commands of the sparsevit CLI; one module per command (see sparsevit.cli)."""
