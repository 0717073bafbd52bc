"""runner: batch A/B prompt iteration for Seedance 2.0 video generation via the EvoLink API."""

__version__ = "0.1.0"

USER_AGENT = f"runner/{__version__}"
"""How runner names itself on every HTTP request (the API and the result-file host): a truthful
product name, never a library's default, which file hosts may refuse (docs/evolink.md §21)."""
