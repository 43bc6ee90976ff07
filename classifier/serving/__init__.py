"""Answering requests: the prediction service, the in-memory model cache, input checks,
batches, rate limits, first start and the app's background loops."""
