"""`tierwise serve`: the web workbench and the REST API over one workspace (FastAPI)."""

from tierwise.web.app import create_app

__all__ = ["create_app"]
