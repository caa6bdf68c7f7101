"""provision: declarative provisioning of image similarity search on Elasticsearch."""

__version__ = "0.1.0"
