"""The hpsearch worker daemon: pulls trials from the server over HTTP and trains them.

Imports ``hpsearch``; never imported by it, and talks to ``api`` over HTTP only.
"""
