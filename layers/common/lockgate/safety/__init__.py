"""Input safety: size limits, prompt-injection detection, and redaction of secrets and PII."""
