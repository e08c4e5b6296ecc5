"""One crawl in this process: the engine that coordinates (``engine``), the workers
(``worker``, ``callbacks``), what crosses between them (``tasks``), which requests
enter the frontier (``admission``), the robots gate (``robots``), recording outcomes
(``record``), this process's part in a shared crawl (``cluster``), a persistent
job (``job``), stats, pipelines, assembling a crawl (``runner``) and operations on
stored crawls (``admin``).
"""
