"""From data to a registered version: datasets, training, evaluation, and the default model
trained on first start."""
