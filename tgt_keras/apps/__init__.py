"""Applications built on the core: the long-tail image demo and its figures."""
