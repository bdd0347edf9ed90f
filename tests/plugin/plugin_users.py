"""The simple auth manager's users in the plugin tests: name -> password."""

from __future__ import annotations

PASSWORDS = {"admin": "admin-pw", "viewer": "viewer-pw"}
