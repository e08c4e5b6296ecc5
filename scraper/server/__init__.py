"""The control server of ``python -m scraper serve``: the schedules of a config run
beside a web dashboard and a Scrapyd-compatible JSON API.

    service    the process: the scheduler on the main thread, uvicorn on another
    app        the Starlette application: routes, static files, /metrics, the guard
    api        Scrapyd's JSON endpoints and ours (live stats, summary, dead letters)
    dashboard  the HTML pages and their htmx fragments and actions
    chart      the SVG chart of a run's pages/s and errors
    jobs       the model: the project, its jobs and their files, read from the scheduler
    auth       the API token, the Host header, cross-site requests

Jobs run as ``schedules.supervisor`` runs every scheduled crawl: child processes,
recorded in the same history.
"""
