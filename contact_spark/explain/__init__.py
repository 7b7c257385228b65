"""Why each customer × campaign × channel was planned or not (``contact_decisions``)."""
