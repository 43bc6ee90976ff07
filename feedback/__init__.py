"""Storage side: settings, database engine and sessions, prediction log, feedback, PII redaction."""
