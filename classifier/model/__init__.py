"""The model itself: features, pipelines, the sentence encoder, calibration, the off-topic
detector, and model files (skops bytes with sha256)."""
