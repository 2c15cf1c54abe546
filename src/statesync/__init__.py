"""statesync."""
