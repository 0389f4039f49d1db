"""The hpsearch server: REST routes, the worker protocol and dashboard pages (FastAPI).

Imports ``hpsearch``; never imported by it, and never imports ``workers``.
"""
