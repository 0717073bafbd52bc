"""runner: batch A/B prompt iteration for Seedance 2.0 video generation via the EvoLink API."""

__version__ = "0.1.0"
