"""The ``laneway`` command line (console script ``laneway`` → :func:`cli.main.main`).

Production commands (``worker``, ``scheduler``, ``tenants``, ``state``) import only
what they run; the developer tools in :mod:`devtools` are imported when their
command is invoked, so a Procfile process never loads the stand-ins.
"""
