"""Models that turn text and images into vectors: tracing for Elasticsearch, local encoders."""
