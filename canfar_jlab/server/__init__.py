"""The Jupyter server extension: REST routes and the live channel over the core."""
