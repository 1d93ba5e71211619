"""predict layer of the engine (Qt-free)."""
