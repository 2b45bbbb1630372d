"""The web edge: thin routes over the operations and the pure core."""
