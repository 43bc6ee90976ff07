"""The feedback loop: the review queue that turns ratings into labels, and retraining."""
