"""The HTTP edge: controllers per surface, auth, problem details."""
