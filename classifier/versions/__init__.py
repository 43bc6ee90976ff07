"""Model versions: the registry, the readiness gate, lifecycle actions (promote, canary,
rollback) and AUTO_PROMOTE."""
