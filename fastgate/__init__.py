"""fastgate: an edge gateway that checks JSON Web Tokens before a request reaches a backend."""

__version__ = "0.1.0"
