"""Archiver: stream S3 objects into one ZIP archive, driven by SQS."""
