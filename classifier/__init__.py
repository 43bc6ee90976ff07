"""Model side, one room per job: model (the pipeline itself), training, versions (registry,
gate, lifecycle), serving (the prediction service), review (the feedback loop) and cli."""
