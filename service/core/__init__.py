"""Settings and other process-wide pieces of the service."""
