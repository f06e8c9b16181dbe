"""govbaseline: security policy as code for public-sector web servers."""

__version__ = "0.1.0"
