"""model layer of the engine (Qt-free)."""
