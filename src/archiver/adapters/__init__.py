"""Adapters for the domain's ports: S3, SQS, and in-memory fakes that behave alike."""
