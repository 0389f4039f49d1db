"""The dashboard: pages of the same app as the API, drawn in the browser from the API's JSON.

Everything it needs ships with the package (our scripts and styles, plotly.js from the installed
``plotly``), so it works with no network. Pages take the admin token, from the session cookie the
sign-in form sets (or a bearer header); the worker token is for machines and gets 403 here.
"""

from api.dashboard._mount import mount_dashboard
from api.dashboard._pages import SignInNeeded, WorkerRefused, error_page

__all__ = ["SignInNeeded", "WorkerRefused", "error_page", "mount_dashboard"]
