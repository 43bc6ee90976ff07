"""Model side: data, training, evaluation, registry, and the prediction service."""
