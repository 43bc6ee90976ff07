"""`python -m classifier`: model, feedback-loop, database and account commands."""
